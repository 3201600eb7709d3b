import json

from odoo import http
from odoo.addons.iot_device.tools import ApiInputError, require_identifier, require_text
from odoo.addons.iot_usage.models.iot_usage import parse_quantity
from odoo.exceptions import AccessError
from odoo.http import request

# The routes of the authorization API: their errors are JSON too (models/ir_http.py).
API_PATHS = ("/iot/authorize", "/iot/authorize/confirm", "/iot/authorize/release")


def json_response(body, status=200):
    return request.make_response(
        json.dumps(body), headers=[("Content-Type", "application/json")], status=status,
    )


def read_committed():
    """Run the rest of the request in a READ COMMITTED transaction.

    Odoo's transactions are REPEATABLE READ: two holds of one wallet at the same time would
    make the second fail to serialize, and Odoo replays a failed request after sleeping up to
    two seconds. Under READ COMMITTED a statement sees what committed before it started, so a
    hold made after the wallet's advisory lock sees the holds made before it, and none fails.
    What the request did so far (authenticating the key) only read: it is rolled back to
    start a new transaction, whose isolation level is set by its first statement.
    """
    request.env.cr.rollback()
    request.env.cr.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")


def json_body():
    try:
        body = json.loads(request.httprequest.get_data() or b"null")
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiInputError("the body is not JSON: %s" % error) from None
    if not isinstance(body, dict):
        raise ApiInputError("the body must be a JSON object")
    return body


def require_reservation_id(body):
    value = body.get("reservation_id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise ApiInputError("'reservation_id' must be a positive integer")
    return value


class IotAuthorization(http.Controller):
    """May this device use this much now? Answered from the prepaid credit, the hold kept
    until the platform confirms what was used (a reading), releases it, or it expires.

    Authenticated by an Odoo API key (``Authorization: Bearer <key>``, checked as
    ``auth="bearer"`` checks it, the check remembered: models/ir_http.py) of a user who may
    send readings (the Integration user). Refusals are answers (HTTP 200, ``authorized: false``
    and a reason); malformed input is HTTP 400 with the reason; every answer is JSON.
    """

    def _answer(self, handler):
        if request.httprequest.method != "POST":
            return json_response({"error": "use POST with a JSON body"}, status=405)
        try:
            body = json_body()
            read_committed()
            return json_response(handler(body))
        except ApiInputError as error:
            request.env.cr.rollback()
            return json_response({"error": str(error)}, status=400)
        except AccessError as error:
            request.env.cr.rollback()
            return json_response({"error": str(error)}, status=403)

    @http.route("/iot/authorize", type="http", auth="iot_api_key", csrf=False, save_session=False)
    def authorize(self):
        def handle(body):
            identifier = require_identifier(body)
            metric = require_text(body, "metric", 64)
            quantity = parse_quantity(body.get("quantity"))
            if not quantity:
                raise ApiInputError("'quantity' must be positive")
            return request.env["iot.wallet.reservation"]._api_authorize(identifier, metric, quantity)

        return self._answer(handle)

    @http.route("/iot/authorize/confirm", type="http", auth="iot_api_key", csrf=False,
                save_session=False)
    def confirm(self):
        def handle(body):
            reservation_id = require_reservation_id(body)
            quantity = parse_quantity(body.get("quantity"))
            return request.env["iot.wallet.reservation"]._api_confirm(reservation_id, quantity)

        return self._answer(handle)

    @http.route("/iot/authorize/release", type="http", auth="iot_api_key", csrf=False,
                save_session=False)
    def release(self):
        def handle(body):
            return request.env["iot.wallet.reservation"]._api_release(require_reservation_id(body))

        return self._answer(handle)
