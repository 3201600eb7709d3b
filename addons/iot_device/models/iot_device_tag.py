from odoo import fields, models


class IotDeviceTag(models.Model):
    _name = "iot_billing.device.tag"
    _description = "IoT Device Tag"
    _order = "name"

    name = fields.Char(required=True, translate=True)
    color = fields.Integer()
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("name_unique", "unique(name)", "A tag with this name already exists."),
    ]
