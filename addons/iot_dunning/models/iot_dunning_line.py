from odoo import fields, models


class IotDunningLine(models.Model):
    """One level reached for one invoice: the record that makes each level's
    actions (e-mail, fee, block) happen once per invoice."""

    _name = "iot.dunning.line"
    _description = "IoT Dunning Line"
    _order = "date desc, id desc"
    _check_company_auto = True

    contract_id = fields.Many2one("iot.contract", required=True, ondelete="cascade", index=True, check_company=True)
    partner_id = fields.Many2one(related="contract_id.partner_id", store=True, string="Customer")
    invoice_id = fields.Many2one("account.move", required=True, ondelete="cascade", index=True, check_company=True)
    level_id = fields.Many2one("iot.dunning.level", required=True, ondelete="restrict", index=True)
    company_id = fields.Many2one(related="contract_id.company_id", store=True, index=True, precompute=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    date = fields.Date(required=True, default=fields.Date.context_today)
    overdue_amount = fields.Monetary(
        currency_field="currency_id", help="Overdue amount of the contract when the level was reached."
    )
    blocked_count = fields.Integer(string="Devices Blocked")
    fee_product_id = fields.Many2one("product.product", string="Fee")
    fee_line_id = fields.Many2one(
        "account.move.line", string="Fee Invoice Line", readonly=True, copy=False, index="btree_not_null"
    )
    fee_invoiced = fields.Boolean(readonly=True, copy=False)

    _sql_constraints = [
        ("invoice_level_unique", "unique(invoice_id, level_id)", "A level is reached once per invoice."),
    ]
