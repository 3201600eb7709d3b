from odoo import models


class IotContractItem(models.Model):
    _inherit = "iot.contract.item"

    def _iot_is_prepaid(self):
        self.ensure_one()
        mode = self.contract_id.iot_prepaid
        return mode == "prepaid" or (mode == "plan" and self.product_id.product_tmpl_id.iot_prepaid)
