from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_dunning_policy_id = fields.Many2one(
        "iot.dunning.policy",
        string="IoT Dunning Policy",
        domain="[('company_id', '=', id)]",
        help="Applies to every IoT contract of the company that names no policy of its own.",
    )
