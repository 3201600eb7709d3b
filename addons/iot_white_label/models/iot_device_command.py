from odoo import api, models


class IotDeviceCommand(models.Model):
    _inherit = "iot_billing.device.command"

    @api.model
    def _iot_topic_prefix(self, company):
        prefix = (company.sudo().iot_mqtt_topic_prefix or "").strip("/")
        return prefix + "/" if prefix else super()._iot_topic_prefix(company)
