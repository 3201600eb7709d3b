import json

from odoo import api, fields, models

PRESET_REASONS = [
    ("activation", "Activation"),
    ("plan_change", "Plan Change"),
    ("options", "Options Changed"),
    ("override", "Override Changed"),
    ("suspension", "Suspension"),
    ("resumption", "Resumption"),
]


class IotContractItemPreset(models.Model):
    """One version of a contract item's resolved settings, as sent to its device.

    Versions are numbered per device (1, 2, ...), across the items of its plan changes, so that
    a device keeps the highest version it applied and ignores an older one. A version is
    acknowledged on its own: acknowledging version 2 does not acknowledge version 3.
    """

    _name = "iot.contract.item.preset"
    _description = "IoT Device Preset Version"
    _order = "device_id, version desc"
    _check_company_auto = True
    _rec_name = "version"

    item_id = fields.Many2one(
        "iot.contract.item", required=True, ondelete="cascade", index=True, readonly=True, check_company=True
    )
    device_id = fields.Many2one("iot_billing.device", required=True, ondelete="cascade", readonly=True,
                                check_company=True)
    company_id = fields.Many2one(related="item_id.company_id", store=True, index=True, precompute=True)
    version = fields.Integer(required=True, readonly=True)
    settings = fields.Json(required=True, readonly=True, help="The resolved settings sent in this version.")
    settings_text = fields.Text(string="Settings (JSON)", compute="_compute_settings_text")
    reason = fields.Selection(PRESET_REASONS, required=True, readonly=True)
    created_at = fields.Datetime(required=True, readonly=True, default=fields.Datetime.now)
    acknowledged_at = fields.Datetime(readonly=True, copy=False)
    is_current = fields.Boolean(
        string="Current", default=True, readonly=True, index=True,
        help="The device's latest version (the one it should run).",
    )
    command_id = fields.Many2one("iot_billing.device.command", string="Command", readonly=True, ondelete="set null")
    waiting = fields.Char(compute="_compute_waiting", help="How long the version has waited for its acknowledgement.")

    _sql_constraints = [
        ("device_version_unique", "UNIQUE(device_id, version)", "A device has each preset version once."),
    ]

    def _compute_settings_text(self):
        for preset in self:
            preset.settings_text = json.dumps(preset.settings, indent=2, sort_keys=True)

    @api.depends("created_at", "acknowledged_at")
    def _compute_waiting(self):
        now = fields.Datetime.now()
        for preset in self:
            end = preset.acknowledged_at or now
            minutes = int(((end - preset.created_at).total_seconds() if preset.created_at else 0) // 60)
            days, rest = divmod(minutes, 24 * 60)
            hours, minutes = divmod(rest, 60)
            preset.waiting = (
                self.env._("%(days)s d %(hours)s h", days=days, hours=hours) if days
                else self.env._("%(hours)s h %(minutes)s min", hours=hours, minutes=minutes)
            )
