from odoo import api, models
from odoo.addons.iot_device.models.iot_device import TRANSITIONS
from odoo.addons.iot_device.models.iot_device_command import COMMAND_BY_ACTION

# The device states whose command is "block" (suspended, terminated): a device in one of them
# is to stay blocked.
BLOCKED_STATES = frozenset(
    TRANSITIONS[action][1] for action, command in COMMAND_BY_ACTION.items() if command == "block"
)


class IotDeviceCommand(models.Model):
    _inherit = "iot_billing.device.command"

    @api.model
    def _prepare_payloads(self, devices, command, payloads):
        """The broker retains one command per device topic, the last one: each retained command
        carries the device's whole desired state, so a device that connects later learns both
        whether it is blocked and which preset it runs, whichever came last.

        ``apply_preset`` says whether the device is blocked; ``block`` and ``unblock`` carry the
        device's current preset (``{"version", "settings"}``) when it has one.
        """
        payloads = super()._prepare_payloads(devices, command, payloads)
        if command == "apply_preset":
            for device in devices:
                payloads[device.id]["blocked"] = device.state in BLOCKED_STATES
        elif command in ("block", "unblock"):
            # sudo: the preset is the system's record of what the device was sent.
            presets = self.env["iot.contract.item.preset"].sudo().search_fetch(
                [("device_id", "in", devices.ids), ("is_current", "=", True)], ["device_id", "version", "settings"]
            )
            for preset in presets:
                payloads[preset.device_id.id]["preset"] = {"version": preset.version, "settings": preset.settings}
        return payloads
