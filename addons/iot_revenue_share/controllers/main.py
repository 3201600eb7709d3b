from odoo import http
from odoo.addons.iot_invoice_grouping.controllers.main import detail_file_response
from odoo.http import request


class IotRevenueShareDetail(http.Controller):
    @http.route("/iot_revenue_share/detail/<int:settlement_id>/<string:file_format>", type="http", auth="user")
    def download_detail(self, settlement_id, file_format):
        """Stream a settlement's detail file as it was written to disk; nothing is stored."""
        settlement = request.env["iot.revenue.share.settlement"].browse(settlement_id)
        return detail_file_response(*settlement._iot_detail_to_path(file_format))  # checks the settlement's access
