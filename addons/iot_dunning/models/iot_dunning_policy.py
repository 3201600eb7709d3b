from odoo import fields, models


class IotDunningPolicy(models.Model):
    _name = "iot.dunning.policy"
    _description = "IoT Dunning Policy"
    _order = "company_id, name, id"
    _check_company_auto = True

    name = fields.Char(required=True)
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id")
    level_ids = fields.One2many("iot.dunning.level", "policy_id", string="Levels", copy=True)
    minimum_amount = fields.Monetary(
        string="Minimum Overdue Amount",
        currency_field="currency_id",
        help="Below this overdue amount (company currency, taxes included) nothing happens, "
        "and devices blocked for unpaid are released.",
    )
    device_scope = fields.Selection(
        [("contract", "All devices of the contract"), ("invoiced", "Devices billed on the overdue invoices")],
        string="Devices Blocked",
        required=True,
        default="contract",
    )
    active = fields.Boolean(default=True)
