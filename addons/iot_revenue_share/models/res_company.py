from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_revenue_share_mode = fields.Selection(
        [("bill", "Vendor bill (self-billing)"), ("entry", "Commission journal entry")],
        string="Revenue share settled as",
        default="bill",
        required=True,
    )
