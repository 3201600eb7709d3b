from odoo import models


class IotContractItem(models.Model):
    _name = "iot.contract.item"
    _inherit = ["iot.contract.item", "iot.webhook.mixin"]

    _iot_webhook_topic = "contract_item"
    _iot_webhook_event = "contract_item"
    _iot_webhook_fields = ("product_id", "device_id", "date_start", "date_end", "state", "price_unit")

    def _iot_webhook_payload(self):
        return [{
            "id": item.id,
            "contract_reference": item.contract_id.reference or None,
            "customer_id": item.partner_id.id or None,
            "device_identifier": item.device_id.identifier or None,
            "plan": item.product_id.default_code or item.product_id.name,
            "date_start": item.date_start,
            "date_end": item.date_end or None,
            "state": item.state,
        } for item in self]
