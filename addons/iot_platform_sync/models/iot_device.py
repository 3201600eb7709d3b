from odoo import models


class IotDevice(models.Model):
    _name = "iot_billing.device"
    _inherit = ["iot_billing.device", "iot.webhook.mixin"]

    _iot_webhook_topic = "device"
    _iot_webhook_event = "device"
    _iot_webhook_fields = ("name", "identifier", "state", "partner_id", "contract_id", "device_type_id", "active")

    def _iot_webhook_payload(self):
        return [{
            "id": device.id,
            "identifier": device.identifier,
            "name": device.name,
            "state": device.state,
            "device_type": device.device_type_id.code or None,
            "customer_id": device.partner_id.id or None,
            "customer_ref": device.partner_id.ref or None,
            "contract_reference": device.contract_id.reference or None,
            "active": device.active,
        } for device in self]
