
from odoo import api, models


class IotUsage(models.Model):
    _inherit = "iot.usage"

    @api.model
    def _iot_usage_ingested(self, touched):
        super()._iot_usage_ingested(touched)
        self.env["iot.wallet"]._rate_usage(touched)
