from odoo import api, fields, models


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    device_user_ids = fields.One2many("iot_billing.device.user", "device_id", string="Users")
    current_device_user_id = fields.Many2one(
        "res.partner", string="Current User", compute="_compute_current_device_user_id",
        help="Who uses the device today (tab Users: who used it when).",
    )

    @api.depends("device_user_ids.partner_id", "device_user_ids.date_from", "device_user_ids.date_to")
    @api.depends_context("date")
    def _compute_current_device_user_id(self):
        today = fields.Date.context_today(self)
        users = self.env["iot_billing.device.user"]._iot_users_on(self.ids, [today] * len(self.ids))
        for device in self:
            device.current_device_user_id = users.get((device.id, today), False) if device.id else False
