from odoo import fields, models


class IotWebhook(models.Model):
    _inherit = "iot.webhook"

    on_preset = fields.Boolean(string="Presets", default=True,
                               help="Preset versions created for devices, and their acknowledgement.")
