from odoo import fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    # Same relation table as iot.invoicing.schedule.invoice_line_ids: a
    # schedule may feed several lines (fixed fee, usage) and a grouped line
    # may carry many schedules.
    iot_schedule_ids = fields.Many2many(
        "iot.invoicing.schedule",
        "iot_invoicing_schedule_account_move_line_rel",
        "move_line_id",
        "schedule_id",
        string="Invoicing Schedules",
        copy=False,
        groups="iot_device.group_iot_user",
    )
    iot_period_from = fields.Date(string="Period From", copy=False)
    iot_period_to = fields.Date(string="Period To", copy=False)
