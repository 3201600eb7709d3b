import json

from odoo.addons.iot_bundle.tests.common import IotBundleCommon
from odoo.tests import tagged


@tagged("post_install", "-at_install")
class TestPresetWebhooks(IotBundleCommon):
    def setUp(self):
        super().setUp()
        self.webhook = self.env["iot.webhook"].create({
            "name": "Camera platform", "url": "http://127.0.0.1:9/hook", "on_device": False,
            "on_contract_item": False, "on_organization": False,
        })

    def _told(self, event_type):
        self.env.cr.flush()  # what a commit does first: the changes gathered become deliveries
        deliveries = self.env["iot.webhook.delivery"].search(
            [("webhook_id", "=", self.webhook.id), ("event_type", "=", event_type)], order="id")
        return [change for delivery in deliveries for change in json.loads(delivery.body)["data"]]

    def test_versions_and_acknowledgements_told(self):
        device = self._pending_device("CAM-HOOK")
        self._activate(device, "2022-04-01", plan=self.bundle)
        (created,) = self._told("preset.created")
        self.assertEqual((created["device_identifier"], created["version"]), ("CAM-HOOK", 1))
        self.assertEqual(created["settings"]["recording_days"], 7)
        self.assertIsNone(created["acknowledged_at"])

        answer = self.Device.with_user(self.integration_user).api_ack_preset(
            [{"identifier": "CAM-HOOK", "version": 1}])
        self.assertTrue(answer[0]["acknowledged_at"])
        (changed,) = self._told("preset.changed")
        self.assertEqual((changed["version"], changed["changed"]), (1, ["acknowledged_at"]))
        self.assertTrue(changed["acknowledged_at"])

    def test_topic_off_tells_nothing(self):
        self.webhook.on_preset = False
        self._activate(self._pending_device("CAM-QUIET"), "2022-04-01", plan=self.bundle)
        self.assertEqual(self._told("preset.created"), [])
