import json

from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import IotBundleCommon


@tagged("post_install", "-at_install")
class TestPresets(IotBundleCommon):
    """Resolved settings are versioned per device and sent as apply_preset; versions are acknowledged."""

    def setUp(self):
        super().setUp()
        self.api = self.Device.with_user(self.integration_user)
        self.device = self._pending_device("CAM-S")
        with freeze_time("2022-04-01"):
            self.item = self._activate(self.device, "2022-04-01", plan=self.bundle)

    def _presets(self):
        return self.env["iot.contract.item.preset"].search([("device_id", "=", self.device.id)], order="version")

    def _last_command(self):
        command = self.device.command_ids.filtered(lambda command: command.command == "apply_preset")[:1]
        return json.loads(command.payload), command

    def test_activation_sends_the_merged_settings(self):
        preset = self._presets()
        self.assertEqual(len(preset), 1)
        expected = {"event_recording": True, "face_recognition": False, "quality": "medium", "recording_days": 7}
        self.assertEqual((preset.version, preset.reason, preset.settings), (1, "activation", expected))
        payload, command = self._last_command()
        self.assertEqual(payload, {"version": 1, "settings": expected, "blocked": False})
        self.assertEqual(command.topic, "iot/CAM-S/commands")
        self.assertEqual(preset.command_id, command)
        self.assertTrue(preset.is_current and not preset.acknowledged_at)

    def test_each_change_is_a_new_version(self):
        self.item.iot_option_ids = [Command.create({"product_id": self.face_option.id})]
        self.assertEqual(self._presets()[-1].settings["face_recognition"], True)
        self.item.iot_override_ids = [Command.create({"setting_id": self.quality.id, "value": "high"})]
        self.assertEqual(self._presets()[-1].settings["quality"], "high")
        self.item.iot_override_ids.value = "high"  # no change: no version
        self.item.iot_option_ids.filtered(lambda option: option.product_id == self.continuous).unlink()
        presets = self._presets()
        self.assertEqual(presets.mapped("version"), [1, 2, 3, 4])
        self.assertEqual(presets.mapped("reason"), ["activation", "options", "override", "options"])
        self.assertEqual(presets[-1].settings["recording_days"], 1)  # back to the plan's default
        self.assertEqual(presets.filtered("is_current"), presets[-1])
        payload, _command = self._last_command()
        self.assertEqual(payload["version"], 4)

    def test_overrides_are_checked_against_their_type(self):
        Value = self.env["iot.bundle.setting.value"]
        for setting, value in ((self.quality, "ultra"), (self.recording_days, "seven"), (self.faces, "maybe")):
            with self.assertRaises(ValidationError):
                Value.create({"setting_id": setting.id, "value": value, "role": "override", "item_id": self.item.id})
        self.assertEqual(len(self._presets()), 1)
        override = Value.create(
            {"setting_id": self.recording_days.id, "value": "30.0", "role": "override", "item_id": self.item.id}
        )
        self.assertEqual(override.value, "30")
        self.assertEqual(self._presets()[-1].settings["recording_days"], 30)

    def test_suspension_and_resumption_where_the_plan_says_so(self):
        self.api.api_suspend([{"identifier": "CAM-S", "date": "2022-04-11"}])
        self.assertEqual(len(self._presets()), 1)  # the plan sets nothing while suspended
        self.api.api_resume([{"identifier": "CAM-S", "date": "2022-04-12"}])
        self.bundle.iot_suspended_setting_value_ids = [Command.create({"setting_id": self.recording_days.id,
                                                                       "value": "0"})]
        self.api.api_suspend([{"identifier": "CAM-S", "date": "2022-04-13"}])
        self.api.api_resume([{"identifier": "CAM-S", "date": "2022-04-20"}])
        presets = self._presets()
        self.assertEqual(presets.mapped("reason"), ["activation", "suspension", "resumption"])
        self.assertEqual(presets.mapped(lambda preset: preset.settings["recording_days"]), [7, 0, 7])

    def _commands(self):
        return [(command.command, json.loads(command.payload)) for command in self.device.command_ids.sorted("id")]

    def test_every_retained_command_carries_the_whole_desired_state(self):
        """The broker keeps the last command only: a block carries the preset, a preset says blocked."""
        first = self._presets().settings
        self.api.api_suspend([{"identifier": "CAM-S", "date": "2022-04-11"}])
        self.assertEqual(self._commands()[-1], ("block", {"preset": {"version": 1, "settings": first}}))
        self.item.iot_option_ids = [Command.create({"product_id": self.face_option.id})]
        command, payload = self._commands()[-1]
        self.assertEqual((command, payload["version"], payload["blocked"]), ("apply_preset", 2, True))
        self.api.api_resume([{"identifier": "CAM-S", "date": "2022-04-20"}])
        self.assertEqual(
            self._commands()[-1], ("unblock", {"preset": {"version": 2, "settings": self._presets()[-1].settings}})
        )
        self.item.iot_override_ids = [Command.create({"setting_id": self.quality.id, "value": "high"})]
        command, payload = self._commands()[-1]
        self.assertEqual((command, payload["version"], payload["blocked"]), ("apply_preset", 3, False))

    def test_a_device_without_preset_is_blocked_as_before(self):
        device = self._pending_device("PLAIN-1")
        self._activate(device, "2022-04-01")
        self.api.api_suspend([{"identifier": "PLAIN-1", "date": "2022-04-11"}])
        command = device.command_ids
        self.assertEqual((command.command, json.loads(command.payload)), ("block", {}))

    def test_plan_change_continues_the_device_numbering(self):
        self._create_plan(
            "Face Bundle", "FACE-BUNDLE", 0.0, self.tax_10, iot_is_bundle=True,
            iot_bundle_option_ids=[Command.set(self.face_option.ids)],
            iot_bundle_default_option_ids=[Command.set(self.face_option.ids)],
        )
        result = self.api.api_change_plan([{"identifier": "CAM-S", "plan": "FACE-BUNDLE", "date": "2022-05-01"}])
        new_item = self.Item.browse(result[0]["contract_item_id"])
        presets = self._presets()
        self.assertEqual(presets.mapped("version"), [1, 2])
        self.assertEqual(presets[-1].item_id, new_item)
        self.assertEqual((presets[-1].reason, presets[-1].settings), ("plan_change", {"face_recognition": True}))
        self.assertEqual(new_item.iot_option_ids.product_id, self.face_option)  # the new plan's defaults

    def test_acknowledgement_rules(self):
        self.item.iot_option_ids = [Command.create({"product_id": self.face_option.id})]
        v1, v2 = self._presets()
        answers = self.api.api_ack_preset([
            {"identifier": "CAM-S", "version": 1},
            {"identifier": "CAM-S", "version": 9},
            {"identifier": "NOPE", "version": 1},
            {"identifier": "CAM-S", "version": "2"},
        ])
        self.assertEqual(answers[0]["current_version"], 2)
        self.assertEqual(answers[0]["version"], 1)
        self.assertEqual(answers[1]["error"], "device 'CAM-S' has no preset version 9")
        self.assertEqual(answers[2]["error"], "unknown device 'NOPE'")
        self.assertEqual(answers[3]["error"], "'version' must be a positive integer")
        self.assertTrue(v1.acknowledged_at)
        self.assertFalse(v2.acknowledged_at)  # an old version's ack does not acknowledge the newer one
        waiting = self.env["iot.contract.item.preset"].search(
            [("is_current", "=", True), ("acknowledged_at", "=", False), ("device_id", "=", self.device.id)]
        )
        self.assertEqual(waiting, v2)
        with freeze_time("2030-01-01"):
            first = self.api.api_ack_preset([{"identifier": "CAM-S", "version": 2}])[0]
            again = self.api.api_ack_preset([{"identifier": "CAM-S", "version": 2}])[0]
        self.assertEqual(first, again)
        self.assertEqual(first["acknowledged_at"], "2030-01-01 00:00:00")
