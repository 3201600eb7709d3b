import os

from werkzeug.wsgi import wrap_file

from odoo import http
from odoo.http import content_disposition, request


def detail_file_response(filename, mimetype, path):
    """A response streaming the detail file at ``path``, which it removes: nothing is stored."""
    handle = open(path, "rb")  # noqa: SIM115 - closed by the WSGI server once the file is sent
    size = os.fstat(handle.fileno()).st_size
    os.unlink(path)  # the open handle keeps the data until the response is sent
    response = request.make_response(
        wrap_file(request.httprequest.environ, handle),
        headers=[
            ("Content-Type", mimetype),
            ("Content-Length", str(size)),
            ("Content-Disposition", content_disposition(filename)),
        ],
    )
    response.direct_passthrough = True
    return response


class IotInvoiceDetail(http.Controller):
    @http.route("/iot_invoice_grouping/detail/<int:move_id>/<string:file_format>", type="http", auth="user")
    def download_detail(self, move_id, file_format):
        """Stream an invoice's detail file as it was written to disk; nothing is stored."""
        move = request.env["account.move"].browse(move_id)
        return detail_file_response(*move._iot_detail_to_path(file_format))  # checks the invoice's access
