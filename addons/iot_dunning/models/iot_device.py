from odoo import fields, models
from odoo.exceptions import UserError


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    # No groups: platforms read the blocked state and its reason with the device.
    iot_suspension_reason = fields.Selection(
        [("manual", "Manual"), ("unpaid", "Unpaid invoices")],
        string="Suspension Reason",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Manual: suspended by a user or a platform; only they resume it. "
        "Unpaid: blocked by dunning; released when the overdue invoices are paid.",
    )
    iot_suspended_since = fields.Datetime(string="Suspended Since", readonly=True, copy=False)
    iot_never_block = fields.Boolean(
        string="Never Block",
        help="Dunning never suspends this device (emergency lighting, medical devices...).",
    )

    def _apply_transition(self, action, description=None):
        if action == "resume" and not self.env.context.get("iot_dunning_release"):
            unpaid = self.filtered(lambda device: device.iot_suspension_reason == "unpaid")
            if unpaid:
                raise UserError(
                    self.env._(
                        "%(devices)s blocked for unpaid invoices: paying the invoices releases them "
                        "(or Release on the device, for the Billing group).",
                        devices=", ".join(unpaid[:10].mapped("display_name")),
                    )
                )
        result = super()._apply_transition(action, description)
        if action == "suspend":
            self.write(
                {
                    "iot_suspension_reason": self.env.context.get("iot_suspension_reason", "manual"),
                    "iot_suspended_since": fields.Datetime.now(),
                }
            )
        elif action in ("resume", "terminate"):
            self.write({"iot_suspension_reason": False, "iot_suspended_since": False})
        return result

    def action_iot_dunning_release(self):
        """Billing group: lift a block for unpaid by hand (e.g. a payment promise)."""
        if not self.env.user.has_group("iot_contract.group_iot_billing"):
            raise UserError(self.env._("Only the IoT Billing group may release devices blocked for unpaid."))
        devices = self.filtered(lambda device: device.iot_suspension_reason == "unpaid")
        devices.with_context(iot_dunning_release=True)._apply_transition(
            "resume", self.env._("Released by %(user)s", user=self.env.user.name)
        )
        return True

    def _iot_api_held_reasons(self):
        # A platform never releases a device blocked for unpaid: paying the invoices does.
        reasons = super()._iot_api_held_reasons()
        for device in self.filtered(
            lambda device: device.state == "suspended" and device.iot_suspension_reason == "unpaid"
        ):
            reasons[device.id] = "device %r is blocked for unpaid invoices" % device.identifier
        return reasons
