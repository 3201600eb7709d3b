from odoo import fields, models


class IotDeviceCommand(models.Model):
    _inherit = "iot_billing.device.command"

    command = fields.Selection(selection_add=[("low_balance", "Low credit")], ondelete={"low_balance": "cascade"})
