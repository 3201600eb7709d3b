from odoo import fields, models


class IotContract(models.Model):
    _inherit = "iot.contract"

    iot_revenue_share_rule_ids = fields.One2many(
        "iot.revenue.share.rule",
        "contract_id",
        string="Revenue Share",
        help="When set, these rules replace the plans' rules for the contract's devices.",
    )
