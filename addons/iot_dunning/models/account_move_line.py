from odoo import fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    iot_dunning_line_ids = fields.One2many(
        "iot.dunning.line", "fee_line_id", string="Dunning Fees", groups="iot_device.group_iot_user"
    )
