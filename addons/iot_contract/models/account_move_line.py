from odoo import api, fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    iot_fixed_schedule_ids = fields.One2many(
        "iot.invoicing.schedule",
        "fixed_line_id",
        string="Fixed Fees of Schedules",
        groups="iot_device.group_iot_user",
    )
    iot_schedule_ids = fields.Many2many(
        "iot.invoicing.schedule",
        string="Invoicing Schedules",
        compute="_compute_iot_schedule_ids",
        groups="iot_device.group_iot_user",
        help="The schedules (a device and a period each) whose fee or usage this line bills.",
    )
    iot_period_from = fields.Date(string="Period From", copy=False)
    iot_period_to = fields.Date(string="Period To", copy=False)

    @api.depends("iot_fixed_schedule_ids")
    def _compute_iot_schedule_ids(self):
        for line in self:
            line.iot_schedule_ids = line.iot_fixed_schedule_ids
