from odoo import fields, models


class IotRevenueShareRuleTier(models.Model):
    _name = "iot.revenue.share.rule.tier"
    _description = "IoT Revenue Share Tier"
    _order = "rule_id, volume_from, id"

    rule_id = fields.Many2one("iot.revenue.share.rule", required=True, ondelete="cascade", index=True)
    currency_id = fields.Many2one(related="rule_id.currency_id")
    volume_from = fields.Monetary(
        help="From this billed volume of the settlement (untaxed, company currency), the percent "
        "applies to the whole volume.",
    )
    percent = fields.Float(digits=(16, 4), required=True)

    _sql_constraints = [
        ("percent_range", "CHECK(percent >= 0 AND percent <= 100)", "A share is between 0 and 100 percent."),
    ]
