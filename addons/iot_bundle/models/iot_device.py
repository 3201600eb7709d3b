from odoo import api, fields, models
from odoo.addons.iot_device.models.iot_device import API_CONTEXT
from odoo.addons.iot_device.tools import ApiInputError, check_batch, parse_entries, require_entry, require_identifier


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    iot_preset_ids = fields.One2many("iot.contract.item.preset", "device_id", string="Presets")

    @api.model
    def _api_parse_preset_ack(self, entry):
        require_entry(entry)
        identifier = require_identifier(entry)
        version = entry.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ApiInputError("'version' must be a positive integer")
        return identifier, version

    @api.model
    def api_ack_preset(self, entries):
        """The device (or its platform) has applied these preset versions; one result per entry.

        Entry: ``{"identifier", "version"}``. Result: ``{"identifier", "version", "acknowledged_at",
        "current_version"}`` (``current_version``: the device's latest version, which an old
        version's acknowledgement leaves unacknowledged) or ``{"identifier", "error"}``.
        Acknowledging a version twice answers its first acknowledgement.

        sudo: the integration user reads no contract item; access to devices is checked and
        only the presets of the devices found (in the current company) are touched.
        """
        check_batch(entries)
        self.check_access("write")
        self = self.with_context(**API_CONTEXT)
        results, parsed = parse_entries(entries, self._api_parse_preset_ack)
        devices = self._api_find_by_identifier({identifier for identifier, _version in parsed.values()})
        presets = self.env["iot.contract.item.preset"].sudo().search(
            [("device_id", "in", [device.id for device in devices.values()])]
        )
        by_key = {(preset.device_id.id, preset.version): preset for preset in presets}
        current = {preset.device_id.id: preset.version for preset in presets if preset.is_current}
        now = fields.Datetime.now()
        to_acknowledge = self.env["iot.contract.item.preset"].sudo()
        answered = []
        for index, (identifier, version) in parsed.items():
            device = devices.get(identifier)
            preset = by_key.get((device.id, version)) if device else None
            if not device:
                results[index] = {"identifier": identifier, "error": "unknown device %r" % identifier}
            elif not preset:
                results[index] = {
                    "identifier": identifier,
                    "error": "device %r has no preset version %d" % (identifier, version),
                }
            else:
                if not preset.acknowledged_at:
                    to_acknowledge |= preset
                answered.append((index, identifier, preset))
        to_acknowledge.write({"acknowledged_at": now})
        for index, identifier, preset in answered:
            results[index] = {
                "identifier": identifier,
                "version": preset.version,
                "acknowledged_at": fields.Datetime.to_string(preset.acknowledged_at),
                "current_version": current.get(preset.device_id.id, preset.version),
            }
        return results
