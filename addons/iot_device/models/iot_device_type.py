from odoo import fields, models


class IotDeviceType(models.Model):
    _name = "iot_billing.device.type"
    _description = "IoT Device Type"
    _order = "sequence, name"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(
        required=True,
        index=True,
        help="Stable code that device platforms send in the API (e.g. 'streetlight').",
    )
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    description = fields.Text(translate=True)
    device_count = fields.Integer(compute="_compute_device_count")

    _sql_constraints = [
        ("code_unique", "unique(code)", "A device type code must be unique."),
    ]

    def _compute_device_count(self):
        counts = dict(
            self.env["iot_billing.device"]._read_group(
                [("device_type_id", "in", self.ids)], ["device_type_id"], ["__count"]
            )
        )
        for device_type in self:
            device_type.device_count = counts.get(device_type, 0)
