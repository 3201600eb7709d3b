from odoo import fields, models


class ProductTemplate(models.Model):
    _inherit = "product.template"

    iot_revenue_share_rule_ids = fields.One2many(
        "iot.revenue.share.rule", "product_tmpl_id", string="Revenue Share"
    )
