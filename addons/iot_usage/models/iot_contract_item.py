from odoo import fields, models


class IotContractItem(models.Model):
    _inherit = "iot.contract.item"

    iot_calculator_ids = fields.One2many(
        "iot.usage.calculator", "contract_item_id", string="Own Usage Calculators",
        help="When set, these usage calculators value this item's usage instead of its plan's.",
    )
    bucket_ids = fields.One2many("iot.usage.bucket", "contract_item_id", string="Usage")
