from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from .common import IotDunningCommon


@tagged("post_install", "-at_install")
class TestDunningApi(IotDunningCommon):
    def setUp(self):
        super().setUp()
        self.light_2.action_suspend()
        self._evaluate("2022-06-10")
        self.api = self.Device.with_user(self.integration_user)

    def test_platform_reads_the_blocked_state_and_reason(self):
        rows = self.api.search_read(
            [("identifier", "in", ["SL-1", "SL-2"])],
            ["identifier", "state", "iot_suspension_reason"],
            order="identifier",
        )
        self.assertEqual(
            [(row["identifier"], row["state"], row["iot_suspension_reason"]) for row in rows],
            [("SL-1", "suspended", "unpaid"), ("SL-2", "suspended", "manual")],
        )

    def test_api_resume_refuses_devices_blocked_for_unpaid_only(self):
        results = self.api.api_resume([{"identifier": "SL-1"}, {"identifier": "SL-2"}, {"identifier": "nope"}])
        self.assertEqual(results[0], {"identifier": "SL-1", "error": "device 'SL-1' is blocked for unpaid invoices"})
        self.assertEqual(results[1], {"identifier": "SL-2", "state": "active"})
        self.assertEqual(results[2]["error"], "unknown device 'nope'")
        self.assertEqual(self.light_1.state, "suspended")
        self.assertFalse(self._commands(self.light_1, "unblock"))

    def test_api_post_events_refuses_unblocking_events_of_unpaid_devices(self):
        answer = self.api.api_post_events(
            [
                {"identifier": "SL-1", "event_type": "resumed", "timestamp": "2022-06-10T10:00:00Z"},
                {"identifier": "SL-1", "event_type": "door_open", "timestamp": "2022-06-10T10:00:00Z"},
                {"identifier": "SL-2", "event_type": "resumed", "timestamp": "2022-06-10T10:00:00Z"},
                {"identifier": "SL-1", "event_type": "Unblock", "timestamp": "2022-06-10T10:00:00Z"},
                {"identifier": "ghost", "event_type": "x", "timestamp": "2022-06-10T10:00:00Z"},
            ]
        )
        self.assertEqual(answer["accepted"], 2)
        self.assertEqual(
            answer["rejected"],
            [
                {"index": 0, "reason": "device 'SL-1' is blocked for unpaid invoices"},
                {"index": 3, "reason": "device 'SL-1' is blocked for unpaid invoices"},
                {"index": 4, "reason": "unknown device 'ghost'"},
            ],
        )
        self.assertEqual(self.light_1.state, "suspended")

    def test_manual_resume_refused_release_by_billing_group(self):
        with self.assertRaises(UserError):
            self.light_1.with_user(self.iot_manager).action_resume()
        with self.assertRaises(UserError):
            self.light_1.with_user(self.iot_manager).action_iot_dunning_release()
        self.assertEqual(self.light_1.state, "suspended")
        self.light_1.with_user(self.billing_user).action_iot_dunning_release()
        self.assertEqual((self.light_1.state, self.light_1.iot_suspension_reason), ("active", False))
        self.assertEqual(len(self._commands(self.light_1, "unblock")), 1)

    def test_evaluate_button_needs_write_access_on_the_contract(self):
        user = new_test_user(self.env, login="dunning_reader", groups="iot_device.group_iot_user")
        with self.assertRaises(Exception):  # noqa: B017 - AccessError, whatever its subclass
            self.contract.with_user(user).action_iot_dunning_evaluate()
