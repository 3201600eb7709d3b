from odoo.tests import tagged

from ..tools import MAX_API_BATCH, ApiInputError
from .common import IotDeviceCommon


@tagged("post_install", "-at_install")
class TestDeviceApi(IotDeviceCommon):
    def setUp(self):
        super().setUp()
        self.api = self.Device.with_user(self.integration_user)

    def test_register_creates_pending_devices_with_api_event(self):
        results = self.api.api_register(
            [
                {"identifier": "NS542", "name": "IOT_NS542", "device_type": "test_meter",
                 "partner": self.customer.id},
                {"identifier": "NS543", "partner": "FLEET-CUST"},
            ]
        )
        self.assertEqual([r["created"] for r in results], [True, True])
        devices = self.Device.browse([r["id"] for r in results])
        self.assertEqual(devices.mapped("state"), ["pending", "pending"])
        self.assertEqual(devices.mapped("name"), ["IOT_NS542", "NS543"])
        self.assertEqual(devices.mapped("partner_id"), self.customer)
        self.assertEqual(devices[0].device_type_id, self.device_type_meter)
        created = self._events(devices[0])
        self.assertEqual((created.event_type, created.origin), ("created", "api"))
        self.assertEqual(results[0], {"identifier": "NS542", "id": devices[0].id,
                                      "state": "pending", "created": True})

    def test_register_twice_updates_and_never_duplicates(self):
        first = self.api.api_register([{"identifier": "NS542", "name": "Old name"}])
        again = self.api.api_register(
            [{"identifier": "NS542", "name": "IOT_NS542", "device_type": "test_streetlight"}]
        )
        self.assertEqual(first[0]["id"], again[0]["id"])
        self.assertFalse(again[0]["created"])
        device = self.Device.search([("identifier", "=", "NS542")])
        self.assertEqual(len(device), 1)
        self.assertEqual(device.name, "IOT_NS542")
        self.assertEqual(device.device_type_id, self.device_type_light)
        self.assertEqual(len(self._events(device, "created")), 1)

    def test_same_identifier_twice_in_one_batch(self):
        results = self.api.api_register(
            [{"identifier": "DUP", "name": "First"}, {"identifier": "DUP", "name": "Second"}]
        )
        self.assertEqual(results[0]["id"], results[1]["id"])
        self.assertEqual([r["created"] for r in results], [True, False])
        self.assertEqual(self.Device.browse(results[0]["id"]).name, "Second")

    def test_register_existing_device_keeps_its_state(self):
        device = self.Device.create({"name": "Active one", "identifier": "ACT-1"})
        device.action_confirm()
        device.action_activate()
        result = self.api.api_register([{"identifier": "ACT-1", "name": "Renamed"}])
        self.assertEqual(result[0]["state"], "active")
        self.assertEqual(device.name, "Renamed")

    def test_register_per_entry_errors_do_not_fail_the_batch(self):
        results = self.api.api_register(
            [
                {"name": "no identifier"},
                {"identifier": "OK-1"},
                {"identifier": "BAD-TYPE", "device_type": "toaster"},
                {"identifier": "BAD-PARTNER", "partner": 999999999},
                {"identifier": "BAD-REF", "partner": "NO-SUCH-REF"},
                "not an object",
                {"identifier": 42},
                {"identifier": "BAD-PARTNER-TYPE", "partner": 1.5},
            ]
        )
        self.assertIn("missing 'identifier'", results[0]["error"])
        self.assertTrue(results[1]["created"])
        self.assertIn("unknown device type 'toaster'", results[2]["error"])
        self.assertIn("unknown partner 999999999", results[3]["error"])
        self.assertIn("unknown partner 'NO-SUCH-REF'", results[4]["error"])
        self.assertIn("must be an object", results[5]["error"])
        self.assertIn("must be a string", results[6]["error"])
        self.assertIn("partner id or reference", results[7]["error"])
        self.assertEqual(
            self.Device.search([("identifier", "like", "BAD-")]).ids, [],
            "no device is created for a rejected entry",
        )

    def test_partner_of_another_company_is_unknown(self):
        other_company = self.env["res.company"].create({"name": "Other IoT Co"})
        foreign = self.env["res.partner"].create({"name": "Foreign", "company_id": other_company.id})
        results = self.api.api_register([{"identifier": "X-1", "partner": foreign.id}])
        self.assertIn("unknown partner", results[0]["error"])

    def test_register_batch_over_limit_is_refused_whole(self):
        batch = [{"identifier": "L-%d" % i} for i in range(MAX_API_BATCH + 1)]
        with self.assertRaisesRegex(ApiInputError, "exceeds the limit"):
            self.api.api_register(batch)
        self.assertFalse(self.Device.search_count([("identifier", "=like", "L-%")]))

    def test_post_events_counts_duplicates_and_rejections(self):
        self.api.api_register([{"identifier": "EV-1"}, {"identifier": "EV-2"}])
        batch = [
            {"identifier": "EV-1", "event_type": "door_open", "timestamp": "2022-04-14T10:00:00Z",
             "message_id": "m-1", "payload": {"door": "front"}},
            {"identifier": "EV-1", "event_type": "door_open", "timestamp": "2022-04-14T10:00:00Z",
             "message_id": "m-1"},
            {"identifier": "EV-2", "event_type": "battery_low", "timestamp": "2022-04-14T12:00:00+02:00"},
            {"identifier": "NOPE", "event_type": "x", "timestamp": "2022-04-14T10:00:00Z"},
            {"identifier": "EV-1", "event_type": "x", "timestamp": "2022-04-14 10:00:00"},
            {"identifier": "EV-1", "timestamp": "2022-04-14T10:00:00Z"},
            {"identifier": "EV-1", "event_type": "x", "timestamp": "2022-04-14T10:00:00Z",
             "payload": [1, 2]},
        ]
        result = self.api.api_post_events(batch)
        self.assertEqual(result["accepted"], 2)
        self.assertEqual(result["duplicates"], 1)
        self.assertEqual([r["index"] for r in result["rejected"]], [3, 4, 5, 6])
        reasons = [r["reason"] for r in result["rejected"]]
        self.assertIn("unknown device 'NOPE'", reasons[0])
        self.assertIn("no time zone", reasons[1])
        self.assertIn("missing 'event_type'", reasons[2])
        self.assertIn("'payload' must be an object", reasons[3])

        device = self.Device.search([("identifier", "=", "EV-1")])
        door = self._events(device, "door_open")
        self.assertEqual(len(door), 1)
        self.assertEqual(door.payload, {"door": "front"})
        self.assertEqual(door.origin, "api")
        self.assertEqual(str(door.date), "2022-04-14 10:00:00")
        battery = self._events(self.Device.search([("identifier", "=", "EV-2")]), "battery_low")
        self.assertEqual(str(battery.date), "2022-04-14 10:00:00", "stored in UTC")

        # A retry of the whole batch stores nothing new.
        retry = self.api.api_post_events(batch[:3])
        self.assertEqual((retry["accepted"], retry["duplicates"]), (1, 2))
        self.assertEqual(len(self._events(device, "door_open")), 1)

    def test_events_without_message_id_are_all_kept(self):
        self.api.api_register([{"identifier": "EV-3"}])
        event = {"identifier": "EV-3", "event_type": "ping", "timestamp": "2022-04-14T10:00:00Z"}
        result = self.api.api_post_events([event, event])
        self.assertEqual((result["accepted"], result["duplicates"]), (2, 0))

    def test_event_origin_must_be_known(self):
        with self.assertRaisesRegex(ApiInputError, "origin"):
            self.api.api_post_events([], origin="ui")
