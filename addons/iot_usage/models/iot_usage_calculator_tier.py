from odoo import fields, models


class IotUsageCalculatorTier(models.Model):
    _name = "iot.usage.calculator.tier"
    _description = "IoT Usage Calculator Tier"
    _order = "calculator_id, from_quantity"

    calculator_id = fields.Many2one("iot.usage.calculator", required=True, ondelete="cascade", index=True)
    from_quantity = fields.Float(
        digits=(20, 6),
        required=True,
        help="The tier applies to quantities above this one (the first tier starts at 0).",
    )
    unit_price = fields.Float(digits="IoT Usage Price", required=True)
    flat_fee = fields.Float(digits="IoT Usage Price", help="Added once when the tier is reached.")

    _sql_constraints = [
        ("from_unique", "unique(calculator_id, from_quantity)", "Two tiers cannot start at the same quantity."),
        ("from_positive", "CHECK(from_quantity >= 0)", "A tier cannot start below 0."),
    ]
