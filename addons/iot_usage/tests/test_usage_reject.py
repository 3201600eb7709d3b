"""Refused input lives in iot.usage.reject, not among the readings (issue 15, robustness):
a refusal reserves no message id, an unreadable payload redelivered is kept once."""

import base64
import hashlib

from odoo.tests import tagged

from .common import IotUsageCommon


def bridge_reject_item(topic, payload, reason):
    """What the bridge sends for bytes it cannot read (bridge/iot_bridge/payloads.py reject_item)."""
    try:
        raw = payload.decode("utf-8")
    except UnicodeDecodeError:
        raw = "base64:" + base64.b64encode(payload).decode("ascii")
    return {"topic": topic, "raw": raw, "reason": reason}


@tagged("post_install", "-at_install")
class TestUsageReject(IotUsageCommon):
    def test_unknown_metric_refusal_does_not_reserve_the_message_id(self):
        refused = self.api.api_ingest([self._reading(metric="litres", quantity="4", message_id="m-1")])
        self.assertIn("unknown metric 'litres'", refused["rejected"][0]["reason"])
        reject = self.Reject.search([("message_id", "=", "m-1")])
        self.assertEqual((reject.state, reject.device_id), ("open", self.device_1))
        self.assertFalse(self.Usage.search_count([("message_id", "=", "m-1")]))

        corrected = self.api.api_ingest([self._reading(metric="kwh", quantity="4", message_id="m-1")])
        self.assertEqual(corrected, {"accepted": 1, "duplicates": 0, "rejected": []})
        reading = self.Usage.search([("message_id", "=", "m-1")])
        self.assertEqual((reading.metric_id, reading.quantity), (self.metric_kwh, 4.0))
        self.assertEqual(reject.state, "reprocessed", "the earlier refusal is settled")
        self.assertTrue(reject.reprocessed_at)

        again = self.api.api_ingest([self._reading(metric="kwh", quantity="4", message_id="m-1")])
        self.assertEqual((again["accepted"], again["duplicates"]), (0, 1))
        self.assertEqual(self.Usage.search_count([("message_id", "=", "m-1")]), 1)

    def test_unknown_device_refusal_is_settled_when_the_device_sends_again(self):
        entry = self._reading(identifier="NEW-1", message_id="n-1")
        self.api.api_ingest([entry])
        reject = self.Reject.search([("identifier", "=", "NEW-1")])
        self.Device.with_user(self.integration_user).api_register([{"identifier": "NEW-1"}])
        self.assertEqual(self.api.api_ingest([entry])["accepted"], 1)
        self.assertEqual(reject.state, "reprocessed")
        # The same refusal again after it was settled is a new one (the entry is still wrong).
        self.api.api_ingest([dict(entry, metric="litres")])
        self.assertEqual(self.Reject.search_count([("identifier", "=", "NEW-1"), ("state", "=", "open")]), 1)

    def test_unreadable_payload_redelivered_is_kept_once(self):
        topic = "iot/U-1/usage"
        not_utf8 = bridge_reject_item(topic, b"\xff\xfe\x00 not utf-8", "payload is not UTF-8")
        not_json = bridge_reject_item(topic, b"{not json", "payload is not JSON")
        first = self.api.api_reject([not_utf8, not_json])
        self.assertEqual(first, {"stored": 2, "duplicates": 0})
        # The bridge crashed before acknowledging: the broker delivers the same bytes again.
        redelivered = self.api.api_reject([dict(not_json), dict(not_utf8)])
        self.assertEqual(redelivered, {"stored": 0, "duplicates": 2})
        kept = self.Reject.search([("identifier", "=", "U-1")])
        self.assertEqual(len(kept), 2)
        expected_id = "sha256:" + hashlib.sha256(b"iot/U-1/usage\x00{not json").hexdigest()
        self.assertIn(expected_id, kept.mapped("message_id"), "derived from the topic and the payload")
        self.assertTrue(kept.filtered(lambda reject: reject.raw_input.startswith("base64:")))
        # Other bytes, or the same bytes on another topic, are other payloads.
        other = self.api.api_reject([bridge_reject_item(topic, b"{not json either", "payload is not JSON"),
                                     bridge_reject_item("iot/U-2/usage", b"{not json", "payload is not JSON")])
        self.assertEqual(other["stored"], 2)

    def test_reject_rights_and_companies(self):
        self.api.api_ingest([self._reading(identifier="NOPE-1")])
        reject = self.Reject.search([("identifier", "=", "NOPE-1")])
        user = self.env["res.users"].create({
            "name": "IoT user", "login": "iot-reject-user",
            "groups_id": [(6, 0, [self.env.ref("iot_device.group_iot_user").id])],
        })
        self.assertEqual(reject.with_user(user).reason, reject.reason, "users read rejects")
        other = self.env["res.company"].create({"name": "Reject Co B"})
        self.Reject.with_company(other)._store([({"identifier": "B-1", "message_id": "x"}, None, "unknown")], "api")
        self.assertFalse(self.Reject.with_user(user).search([("identifier", "=", "B-1")]),
                         "another company's rejects are not visible")
