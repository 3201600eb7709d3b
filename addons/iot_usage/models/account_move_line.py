from odoo import api, fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    iot_valuation_ids = fields.One2many(
        "iot.usage.valuation",
        "move_line_id",
        string="Usage Valuations",
        groups="iot_device.group_iot_user",
    )

    @api.depends("iot_valuation_ids")
    def _compute_iot_schedule_ids(self):
        super()._compute_iot_schedule_ids()
        for line in self:
            line.iot_schedule_ids |= line.iot_valuation_ids.schedule_id
