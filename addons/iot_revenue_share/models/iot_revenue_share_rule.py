from decimal import Decimal

from odoo import api, fields, models
from odoo.exceptions import ValidationError

SHARE_TYPES = [
    ("percent", "Percent of the billed amount"),
    ("fixed", "Fixed amount per device and period"),
    ("tiered", "Tiered percent by the beneficiary's billed volume"),
]
KINDS = [("fixed", "Fixed fees"), ("usage", "Usage"), ("device", "Per device")]


class IotRevenueShareRule(models.Model):
    """Who receives which part of what a plan (or a contract, or a device) bills."""

    _name = "iot.revenue.share.rule"
    _description = "IoT Revenue Share Rule"
    _order = "sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, help="Shown on the beneficiary's bill lines and statement.")
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id")
    product_tmpl_id = fields.Many2one(
        "product.template", string="Plan", index="btree_not_null", ondelete="cascade", check_company=True,
        domain="[('iot_is_plan', '=', True)]",
    )
    contract_id = fields.Many2one(
        "iot.contract", index="btree_not_null", ondelete="cascade", check_company=True,
        help="Set to replace the plan's rules on this contract.",
    )
    device_id = fields.Many2one(
        "iot_billing.device", index="btree_not_null", ondelete="cascade", check_company=True,
        help="Set to replace the plan's and contract's rules for this device.",
    )
    beneficiary = fields.Selection(
        [("partner", "A partner"), ("device_owner", "The device's owner")],
        required=True,
        default="partner",
    )
    partner_id = fields.Many2one("res.partner", string="Beneficiary Partner", check_company=True)
    share_type = fields.Selection(SHARE_TYPES, required=True, default="percent")
    percent = fields.Float(digits=(16, 4), help="Percent of the billed untaxed amount.")
    amount = fields.Monetary(string="Amount per Device", help="Per device and billed period.")
    tier_ids = fields.One2many("iot.revenue.share.rule.tier", "rule_id", string="Tiers", copy=True)
    applies_to = fields.Selection(
        [("both", "Fixed fees and usage"), ("fixed", "Fixed fees"), ("usage", "Usage")],
        required=True,
        default="both",
    )
    basis = fields.Selection(
        [("invoiced", "Invoiced (on posting)"), ("cash", "Cash (on payment)")],
        required=True,
        default="invoiced",
        help="Invoiced: shared once the customer invoice is posted. Cash: once it is fully paid.",
    )
    date_start = fields.Date(
        string="Valid From",
        required=True,
        default=lambda self: fields.Date.context_today(self).replace(day=1),
        help="Customer invoices dated before this day are not shared by this rule.",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Bill Product",
        required=True,
        check_company=True,
        default=lambda self: self.env.ref("iot_revenue_share.product_revenue_share", raise_if_not_found=False),
        help="Product of the beneficiary's bill lines: its purchase taxes and expense account apply.",
    )

    _sql_constraints = [
        ("percent_range", "CHECK(percent >= 0 AND percent <= 100)", "A share is between 0 and 100 percent."),
    ]

    @api.constrains("product_tmpl_id", "contract_id", "device_id", "beneficiary", "partner_id", "share_type",
                    "tier_ids")
    def _check_rule(self):
        for rule in self:
            if len([scope for scope in (rule.product_tmpl_id, rule.contract_id, rule.device_id) if scope]) != 1:
                raise ValidationError(self.env._("Rule %s: set exactly one of plan, contract or device.", rule.name))
            if rule.beneficiary == "partner" and not rule.partner_id:
                raise ValidationError(self.env._("Rule %s: choose the beneficiary partner.", rule.name))
            if rule.share_type == "tiered" and not rule.tier_ids:
                raise ValidationError(self.env._("Rule %s: a tiered share needs tiers.", rule.name))

    def _tier_percent(self, volume):
        """The percent of the highest tier whose threshold ``volume`` reaches (Decimal)."""
        self.ensure_one()
        percent = Decimal(0)
        for tier in self.tier_ids.sorted("volume_from"):
            if volume >= Decimal(repr(tier.volume_from)):
                percent = Decimal(repr(tier.percent))
        return percent
