from odoo import api, fields, models


class IotDeviceEvent(models.Model):
    _inherit = "iot_billing.device.event"

    device_user_id = fields.Many2one(
        "res.partner", string="Device User", compute="_compute_device_user_id",
        help="Who used the device on the event's day (UTC), from the device's users.",
    )

    @api.depends("device_id", "date", "device_id.device_user_ids.date_from", "device_id.device_user_ids.date_to",
                 "device_id.device_user_ids.partner_id")
    def _compute_device_user_id(self):
        events = self.filtered(lambda event: event.device_id and event.date)
        days = [event.date.date() for event in events]
        users = self.env["iot_billing.device.user"]._iot_users_on([event.device_id.id for event in events], days)
        for event in self:
            event.device_user_id = (
                users.get((event.device_id.id, event.date.date())) if event in events else False
            ) or False
