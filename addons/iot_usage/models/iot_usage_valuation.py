from odoo import fields, models


class IotUsageValuation(models.Model):
    """What one calculator made of one schedule's usage: the detail behind a usage line."""

    _name = "iot.usage.valuation"
    _description = "IoT Usage Valuation"
    _order = "schedule_id, sequence, id"
    # Rebuilt by every valuation, one row per schedule and rule: no create/write user
    # and date, whose foreign keys cost about a sixth of each insert (as on iot.usage).
    _log_access = False

    schedule_id = fields.Many2one("iot.invoicing.schedule", required=True, ondelete="cascade", index=True)
    calculator_id = fields.Many2one("iot.usage.calculator", required=True, ondelete="restrict")
    sequence = fields.Integer()
    company_id = fields.Many2one(related="schedule_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="schedule_id.currency_id")
    quantity = fields.Float(digits=(20, 6), help="The period's aggregated quantity.")
    billable_quantity = fields.Float(digits=(20, 6), help="Quantity after the included allowance.")
    amount = fields.Monetary()
    reading_count = fields.Integer()
