from odoo import api, fields, models


class IotDunningLevel(models.Model):
    _name = "iot.dunning.level"
    _description = "IoT Dunning Level"
    _order = "policy_id, days_after_due, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    policy_id = fields.Many2one("iot.dunning.policy", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="policy_id.company_id", store=True, index=True, precompute=True)
    days_after_due = fields.Integer(
        required=True,
        help="The level is reached this many days after the due date of the contract's oldest unpaid IoT invoice.",
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        string="Reminder E-mail",
        domain="[('model', '=', 'iot.contract')]",
        help="Sent to the customer when the level is reached; empty: a note in the chatter only.",
    )
    fee_product_id = fields.Many2one(
        "product.product",
        string="Fee",
        check_company=True,
        domain="[('type', '=', 'service')]",
        help="Added once, at its sales price, to the contract's next invoice.",
    )
    block = fields.Boolean(
        string="Block Devices",
        help="Suspend the devices (reason: unpaid); they receive a 'block' command.",
    )

    _sql_constraints = [
        ("days_positive", "CHECK(days_after_due >= 0)", "A level is reached on or after the due date."),
        ("days_unique", "unique(policy_id, days_after_due)", "Two levels of a policy cannot have the same day."),
    ]

    @api.depends("policy_id.name", "name", "days_after_due")
    def _compute_display_name(self):
        for level in self:
            level.display_name = self.env._("%(level)s (+%(days)s d)", level=level.name, days=level.days_after_due)
