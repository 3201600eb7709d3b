import json

import werkzeug.exceptions

from odoo import models
from odoo.exceptions import AccessDenied, AccessError
from odoo.http import SessionExpiredException, request

from ..controllers.main import API_PATHS


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

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
