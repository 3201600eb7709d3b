from odoo import fields, models


class ProductTemplate(models.Model):
    _inherit = "product.template"

    iot_prepaid = fields.Boolean(
        string="Prepaid",
        help="Contract items on this plan are paid from the contract's prepaid credit: their usage is "
        "rated into the wallet as readings arrive (a contract may say otherwise).",
    )
    iot_prepaid_credit = fields.Boolean(
        string="Prepaid Credit Product",
        help="Sold as prepaid credit (top-ups): booked as a customer advance, deducted from the "
        "invoices of the usage it pays.",
    )
