from odoo import fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    iot_line_kind = fields.Selection(
        [("fixed", "Fixed fee"), ("usage", "Usage")], string="IoT line kind", copy=False
    )
    iot_calculator_id = fields.Many2one("iot.usage.calculator", string="Usage rule", copy=False)
    iot_member_count = fields.Integer(
        string="Grouped parts", copy=False, help="How many device-period parts this line carries."
    )
