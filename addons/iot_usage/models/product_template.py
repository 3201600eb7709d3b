from odoo import fields, models


class ProductTemplate(models.Model):
    _inherit = "product.template"

    iot_calculator_ids = fields.One2many(
        "iot.usage.calculator", "product_tmpl_id", string="Usage Calculators",
        help="How usage is valued each period for contract items on this plan.",
    )
