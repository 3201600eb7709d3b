import hashlib
import json
import re
from collections import OrderedDict

import werkzeug.exceptions

from odoo import models
from odoo.addons.base.models.res_users import INDEX_SIZE, KEY_CRYPT_CONTEXT
from odoo.exceptions import AccessDenied, AccessError
from odoo.http import SessionExpiredException, request

from ..controllers.main import API_PATHS

# API keys this worker process checked, by the SHA-256 of the key: the stored hash the key
# matched. Checking a key (PBKDF2, 6,000 rounds) costs more CPU than an authorization itself;
# a key seen before is checked by looking its stored hash up, which also makes a revoked or
# expired key fail at once. Bounded: the least recently used keys leave first.
_CHECKED_KEYS = OrderedDict()
_CHECKED_KEYS_LIMIT = 1000


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _auth_method_iot_api_key(cls):
        """Odoo's API keys (``Authorization: Bearer <key>``, as ``auth="bearer"``, global keys
        or the 'rpc' scope, active users, not expired), with the key's check remembered."""
        header = request.httprequest.headers.get("Authorization") or ""
        match = re.match(r"^bearer\s+(.+)$", header, re.IGNORECASE)
        if not match:
            raise werkzeug.exceptions.Unauthorized('use the "Authorization: Bearer <API key>" header')
        key = match.group(1).strip()
        digest = hashlib.sha256(key.encode()).digest()
        request.env.cr.execute(
            """SELECT apikey.user_id, apikey.key FROM res_users_apikeys apikey
                 JOIN res_users users ON users.id = apikey.user_id
                WHERE users.active AND apikey.index = %s AND (apikey.scope IS NULL OR apikey.scope = 'rpc')
                  AND (apikey.expiration_date IS NULL OR apikey.expiration_date >= now() at time zone 'utc')""",
            [key[:INDEX_SIZE]],
        )
        candidates = request.env.cr.fetchall()
        remembered = _CHECKED_KEYS.get(digest)
        matched = next(((uid, stored) for uid, stored in candidates if stored == remembered), None)
        if matched:
            _CHECKED_KEYS.move_to_end(digest)
        else:
            matched = next(((uid, stored) for uid, stored in candidates if KEY_CRYPT_CONTEXT.verify(key, stored)),
                           None)
            if not matched:
                raise werkzeug.exceptions.Unauthorized("invalid API key")
            _CHECKED_KEYS[digest] = matched[1]
            while len(_CHECKED_KEYS) > _CHECKED_KEYS_LIMIT:
                _CHECKED_KEYS.popitem(last=False)
        request.update_env(user=matched[0])

    @classmethod
    def _handle_error(cls, exception):
        """The authorization API answers in JSON whatever fails, a missing or wrong API key
        included (Odoo's answer to those is an HTML page or a redirection to the login)."""
        if request.httprequest.path not in API_PATHS:
            return super()._handle_error(exception)
        if isinstance(exception, werkzeug.exceptions.HTTPException):
            status, message = exception.code or 500, exception.description
        elif isinstance(exception, (AccessDenied, AccessError, SessionExpiredException)):
            status, message = 401, "a valid API key is required (Authorization: Bearer <key>)"
        else:
            status, message = 500, "internal error"
        return request.make_response(
            json.dumps({"error": message}), headers=[("Content-Type", "application/json")], status=status,
        )
