from odoo import models


class IotContract(models.Model):
    _inherit = "iot.contract"

    def _iot_group_key(self, part, info):
        # "One line per device" keys a line by schedule and kind: a bundle's option parts share
        # both, and each keeps a line of its own (the other policies key by product already).
        key = super()._iot_group_key(part, info)
        if self.invoice_grouping == "none" and part["kind"] == "fixed":
            key += (part["product_id"],)
        return key
