import base64

from odoo.addons.iot_device.tools import MAX_API_BATCH, ApiInputError
from odoo.tests import tagged

from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestUsageIngest(IotUsageCommon):
    def test_accepted_duplicates_and_exact_quantities(self):
        batch = [
            self._reading(quantity="12.345678", message_id="a"),
            self._reading(quantity=0.1, message_id="b"),
            self._reading(quantity=7, message_id="c", identifier="U-2"),
            self._reading(quantity="12.345678", message_id="a"),  # duplicate inside the batch
        ]
        result = self.api.api_ingest(batch)
        self.assertEqual(result, {"accepted": 3, "duplicates": 1, "rejected": []})
        readings = self.Usage.search([("device_id", "=", self.device_1.id)], order="message_id")
        self.assertEqual(readings.mapped("message_id"), ["a", "b"])
        self.assertEqual(readings.mapped("quantity"), [12.345678, 0.1])
        bucket = self._bucket_at("2022-04-14T10:00:00Z")
        self.assertEqual((bucket.reading_count, bucket.quantity_sum, bucket.state), (2, 12.445678, "to_value"))
        self.assertEqual(readings[0].source, "api")
        self.env.cr.execute(
            "SELECT sum(quantity)::text FROM iot_usage WHERE device_id = %s", (self.device_1.id,)
        )
        self.assertEqual(self.env.cr.fetchone()[0], "12.445678", "stored exactly, no float drift")

        retry = self.api.api_ingest(batch)
        self.assertEqual((retry["accepted"], retry["duplicates"]), (0, 4))
        self.assertEqual(self.Usage.search_count([("device_id", "in", (self.device_1 | self.device_2).ids)]), 3)

    def test_every_rejection_is_stored_with_its_reason(self):
        cases = [
            (self._reading(identifier="NOPE"), "unknown device 'NOPE'"),
            (self._reading(metric="litres"), "unknown metric 'litres'"),
            (self._reading(quantity="twelve"), "not a number"),
            (self._reading(quantity="NaN"), "not finite"),
            (self._reading(quantity="Infinity"), "not finite"),
            (self._reading(quantity=-1), "negative"),
            (self._reading(quantity="1e20"), "too large"),
            (self._reading(quantity=True), "must be a number"),
            (self._reading(timestamp="2022-04-14 10:00:00"), "no time zone"),
            (self._reading(timestamp="yesterday"), "not ISO 8601"),
            (self._reading(timestamp="2999-01-01T00:00:00Z"), "future"),
            ({"identifier": "U-1", "metric": "kwh", "quantity": 1, "timestamp": "2022-04-14T10:00:00Z"},
             "missing 'message_id'"),
            (self._reading(identifier="x" * 200), "longer than 128"),
            (self._reading(identifier="U-1'; DROP TABLE iot_usage; --"), "unknown device"),
            ("not an object", "must be an object"),
        ]
        good = self._reading(message_id="good")
        result = self.api.api_ingest([good] + [entry for entry, _reason in cases])
        self.assertEqual(result["accepted"], 1)
        self.assertEqual(len(result["rejected"]), len(cases))
        for item, (_entry, reason) in zip(result["rejected"], cases, strict=True):
            self.assertIn(reason, item["reason"])
        stored = self.Reject.search([])
        self.assertEqual(len(stored), len(cases), "nothing is dropped")
        self.assertEqual(set(stored.mapped("state")), {"open"})
        self.assertTrue(all(stored.mapped("raw_input")))
        self.assertTrue(all(stored.mapped("reason")))
        unknown = stored.filtered(lambda reject: reject.identifier == "NOPE")
        self.assertIn('"quantity": "1"', unknown.raw_input)
        self.assertEqual(self.Usage.search_count([]), 1, "a refused entry is not a reading")
        # A rejected batch re-sent is not stored twice.
        self.api.api_ingest([cases[0][0]])
        self.assertEqual(self.Reject.search_count([("identifier", "=", "NOPE")]), 1)

    def test_batch_over_the_limit_is_refused_whole(self):
        with self.assertRaisesRegex(ApiInputError, "exceeds the limit"):
            self.api.api_ingest([self._reading() for _ in range(MAX_API_BATCH + 1)])
        self.assertFalse(self.Usage.search_count([]))

    def test_reprocess_after_the_device_is_registered(self):
        result = self.api.api_ingest([self._reading(identifier="LATE-DEV", quantity="5", message_id="l1")])
        self.assertEqual(len(result["rejected"]), 1)
        rejected = self.Reject.search([("identifier", "=", "LATE-DEV")])
        self.env["iot_billing.device"].api_register([{"identifier": "LATE-DEV"}])
        rejected.action_reprocess()
        device = self.env["iot_billing.device"].search([("identifier", "=", "LATE-DEV")])
        reading = self.Usage.search([("device_id", "=", device.id)])
        self.assertEqual((reading.quantity, reading.message_id, reading.source), (5.0, "l1", "import"))
        self.assertEqual(self._bucket_at("2022-04-14T10:00:00Z", device=device).quantity_sum, 5.0)
        self.assertEqual(rejected.state, "reprocessed", "kept, marked re-processed")

    def test_reprocess_keeps_what_is_still_wrong(self):
        self.api.api_ingest([self._reading(identifier="GHOST", message_id="g1")])
        self.api.api_ingest([{"identifier": "GHOST", "metric": "kwh", "quantity": 1,
                             "timestamp": "2022-04-14T10:00:00Z"}])  # no message id
        rejected = self.Reject.search([("identifier", "=", "GHOST")])
        self.assertEqual(len(rejected), 2)
        rejected.action_reprocess()
        again = self.Reject.search([("identifier", "=", "GHOST")])
        self.assertEqual(again, rejected, "still wrong: the same rejects, none added")
        self.assertEqual(set(again.mapped("state")), {"open"})
        self.assertIn("missing 'message_id'", again.filtered(lambda reject: not reject.message_id).reason)

    def test_unreadable_payloads_are_kept(self):
        result = self.api.api_reject([{"topic": "iot/SL-1/usage", "raw": "{not json", "reason": "not JSON"}])
        self.assertEqual(result, {"stored": 1, "duplicates": 0})
        kept = self.Reject.search([("raw_input", "=", "{not json")])
        self.assertEqual((kept.state, kept.identifier, kept.source), ("open", "SL-1", "mqtt"))
        self.assertIn("iot/SL-1/usage", kept.reason)

    def test_csv_import_reports_line_numbers(self):
        content = "\n".join([
            "identifier,metric,quantity,timestamp,message_id",
            "U-1,kwh,3.5,2022-04-14T10:00:00Z,csv-1",
            "U-1,kwh,abc,2022-04-14T10:00:00Z,csv-2",
            "U-9,kwh,1,2022-04-14T10:00:00Z,csv-3",
            "U-2,kwh,2,2022-04-15T10:00:00+02:00,csv-4",
        ])
        wizard = self.env["iot.usage.import.wizard"].create(
            {"csv_file": base64.b64encode(content.encode()), "filename": "readings.csv"}
        )
        wizard.action_import()
        self.assertIn("2 readings imported", wizard.result)
        self.assertIn("line 3: quantity 'abc' is not a number", wizard.result)
        self.assertIn("line 4: unknown device 'U-9'", wizard.result)
        self.assertEqual(self.Usage.search_count([("source", "=", "import")]), 2)
        self.assertEqual(self.Reject.search_count([("source", "=", "import"), ("state", "=", "open")]), 2)

    def test_integration_user_cannot_read_other_company_usage(self):
        other = self.env["res.company"].create({"name": "Usage Co B"})
        device_b = self.env["iot_billing.device"].create({"name": "B", "identifier": "U-1", "company_id": other.id})
        self.Usage.with_company(other).create(
            {"device_id": device_b.id, "company_id": other.id, "metric_id": self.metric_kwh.id,
             "quantity": 1, "timestamp": "2022-04-14 10:00:00", "message_id": "b-1"}
        )
        self.assertFalse(self.api.search([("device_id", "=", device_b.id)]))
        result = self.api.api_ingest([self._reading(message_id="b-1")])
        self.assertEqual(result["accepted"], 1, "company A's U-1 is another device")
