from datetime import timedelta

from odoo import fields
from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import tagged

from .http_receiver import Receiver


@tagged("post_install", "-at_install")
class TestStatisticsPull(IotContractCommon):
    def setUp(self):
        super().setUp()
        self.platform = Receiver().start()
        self.addCleanup(self.platform.stop)
        self.source = self.env["iot.statistics.source"].create({
            "name": "Camera platform", "url": self.platform.url, "auth_header": "Bearer platform-token",
            "interval_minutes": 1440,
        })
        self.device = self._pending_device("NVR-1", "Recorder of the subsidiary")
        day = fields.Date.today() - timedelta(days=1)
        self.moments = ["%sT%02d:00:00Z" % (day, hour) for hour in (1, 2, 3)]

    def _stat(self, number, quantity, metric="kwh"):
        return {"id": "s-%d" % number, "identifier": "NVR-1", "metric": metric, "quantity": quantity,
                "timestamp": self.moments[number % 3]}

    def _stored(self):
        self.env.flush_all()
        self.env.cr.execute("SELECT count(*), coalesce(sum(quantity), 0)::text FROM iot_usage WHERE device_id = %s",
                            (self.device.id,))
        return self.env.cr.fetchone()

    def test_pages_stored_once_with_their_cursor(self):
        self.platform.pages = {
            "": {"statistics": [self._stat(0, 12), self._stat(1, "3.5")], "cursor": "c1", "more": True},
            "c1": {"statistics": [self._stat(2, 7)], "cursor": "c2", "more": False},
            # The platform sends its last statistic again: it counts once.
            "c2": {"statistics": [self._stat(2, 7)], "cursor": "c2", "more": False},
        }
        first = self.source._pull_page()
        self.assertEqual((first["accepted"], first["more"]), (2, True))
        self.assertEqual(self.source.cursor, "c1")
        self.assertEqual(self.source.next_pull_at, self.source.last_pull_at, "more pages: pulled again at once")
        self.source._pull_page()
        self.assertEqual(self._stored(), (3, "22.500000"))
        self.assertEqual(self.source.cursor, "c2")
        self.assertGreater(self.source.next_pull_at, self.source.last_pull_at)
        again = self.source._pull_page()
        self.assertEqual((again["accepted"], again["duplicates"]), (0, 1))
        self.assertEqual(self._stored(), (3, "22.500000"))
        self.assertEqual(self.source.accepted_count, 3)
        get = [entry for entry in self.platform.received if entry[0] == "GET"]
        self.assertEqual([entry[2].get("since", [""])[0] for entry in get], ["", "c1", "c2"])
        self.assertEqual(get[0][3]["Authorization"], "Bearer platform-token")
        buckets = self.env["iot.usage.bucket"].search([("device_id", "=", self.device.id)])
        self.assertAlmostEqual(sum(buckets.mapped("quantity_sum")), 22.5)

    def test_bad_answers_store_nothing(self):
        self.platform.pages = {"": b"<html>maintenance</html>"}
        outcome = self.source._pull_page()
        self.assertIn("JSONDecodeError", outcome["error"])
        self.assertEqual(self._stored(), (0, "0"))
        self.assertFalse(self.source.cursor)
        self.assertIn("JSONDecodeError", self.source.last_error)

        self.platform.pages = {"": {"rows": []}}
        self.assertIn("'statistics' list", self.source._pull_page()["error"])
        self.platform.pages = {"": {"statistics": [self._stat(0, 1)] * 10001, "cursor": "x"}}
        self.assertIn("at most 10000", self.source._pull_page()["error"])
        self.assertEqual(self._stored(), (0, "0"))
        self.assertFalse(self.source.cursor)

    def test_unknown_devices_and_bad_quantities_rejected_with_reason(self):
        self.platform.pages = {"": {"statistics": [
            self._stat(0, 2), dict(self._stat(1, 1), identifier="NOT-A-DEVICE"), dict(self._stat(2, "many")),
        ], "cursor": "c1"}}
        outcome = self.source._pull_page()
        self.assertEqual(outcome["accepted"], 1)
        reasons = [item["reason"] for item in outcome["rejected"]]
        self.assertEqual(len(reasons), 2)
        self.assertIn("unknown device", reasons[0])
        self.assertEqual(self.source.cursor, "c1")
        self.assertIn("2 rejected", self.source.last_result)

    def test_platform_down_retried_sooner(self):
        self.platform.stop()
        outcome = self.source._pull_page()
        self.assertIn("ConnectionError", outcome["error"])
        self.assertLessEqual(self.source.next_pull_at - self.source.last_pull_at, timedelta(minutes=15))
        self.env["iot.statistics.source"]._cron_pull_due()  # not due yet: nothing happens, no error
        self.assertEqual(self._stored(), (0, "0"))
