from odoo import models


class IotContractItemPreset(models.Model):
    _name = "iot.contract.item.preset"
    _inherit = ["iot.contract.item.preset", "iot.webhook.mixin"]

    _iot_webhook_topic = "preset"
    _iot_webhook_event = "preset"
    _iot_webhook_fields = ("acknowledged_at",)

    def _iot_webhook_payload(self):
        return [{
            "id": preset.id,
            "device_identifier": preset.device_id.identifier,
            "contract_reference": preset.item_id.contract_id.reference or None,
            "version": preset.version,
            "settings": preset.settings,
            "reason": preset.reason,
            "created_at": preset.created_at,
            "acknowledged_at": preset.acknowledged_at or None,
        } for preset in self]
