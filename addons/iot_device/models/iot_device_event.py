from odoo import api, fields, models

# Event codes the life cycle writes itself; platforms may send any other code.
LIFECYCLE_EVENT_TYPES = (
    "created",
    "confirmed",
    "activated",
    "suspended",
    "resumed",
    "terminated",
)


class IotDeviceEvent(models.Model):
    _name = "iot_billing.device.event"
    _description = "IoT Device Event"
    _order = "date desc, id desc"
    _rec_name = "event_type"

    device_id = fields.Many2one(
        "iot_billing.device", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(
        related="device_id.company_id", store=True, index=True, precompute=True
    )
    event_type = fields.Char(
        required=True,
        index=True,
        help="Code of the event: a life-cycle code (created, activated, suspended, ...) "
        "or any code a device platform sends.",
    )
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    origin = fields.Selection(
        [("ui", "User interface"), ("api", "API"), ("mqtt", "MQTT"), ("system", "System")],
        required=True,
        default="ui",
    )
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user)
    description = fields.Char()
    payload = fields.Json()
    message_id = fields.Char(
        string="Message ID",
        help="Idempotency key sent by the platform: an event is stored once per device and key.",
    )
    is_lifecycle = fields.Boolean(compute="_compute_is_lifecycle")

    _sql_constraints = [
        (
            "device_message_unique",
            "unique(device_id, message_id)",
            "This device already has an event with this message ID.",
        ),
    ]

    @api.depends("event_type")
    def _compute_is_lifecycle(self):
        for event in self:
            event.is_lifecycle = event.event_type in LIFECYCLE_EVENT_TYPES
