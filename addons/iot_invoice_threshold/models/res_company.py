from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_invoice_threshold = fields.Monetary(
        string="IoT invoicing level",
        help="Default of contracts and plans: a contract's due periods whose untaxed total is below "
        "this amount are held and invoiced with later periods. 0: every period is invoiced.",
    )
    iot_invoice_hold_months = fields.Integer(
        string="IoT longest hold (months)",
        default=12,
        help="A held period is invoiced at the latest this many months after it was due, whatever "
        "its amount. 0: no limit (held until the level is reached or the contract ends).",
    )

    _sql_constraints = [
        ("iot_invoice_threshold_positive", "CHECK(iot_invoice_threshold >= 0)", "The invoicing level is negative."),
        ("iot_invoice_hold_months_positive", "CHECK(iot_invoice_hold_months >= 0)", "The longest hold is negative."),
    ]
