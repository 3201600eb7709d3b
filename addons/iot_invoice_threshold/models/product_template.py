from odoo import fields, models


class ProductTemplate(models.Model):
    _inherit = "product.template"

    iot_invoice_threshold = fields.Monetary(
        string="Invoicing Level",
        help="Contracts that follow their plans hold due periods below this untaxed amount; with "
        "several plans, the highest level applies. 0: the company's level.",
    )
    iot_invoice_hold_months = fields.Integer(
        string="Longest Hold (months)",
        help="With this plan's level: a held period is invoiced at the latest this many months after "
        "it was due. 0: the company's longest hold.",
    )

    _sql_constraints = [
        ("iot_invoice_threshold_positive", "CHECK(iot_invoice_threshold >= 0)", "The invoicing level is negative."),
        ("iot_invoice_hold_months_positive", "CHECK(iot_invoice_hold_months >= 0)", "The longest hold is negative."),
    ]
