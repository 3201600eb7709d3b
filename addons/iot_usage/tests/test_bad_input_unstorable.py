"""Values PostgreSQL cannot store (NUL, lone surrogates, NaN in jsonb) and values Python
cannot print (a 5,000-digit integer) stay with their entry: rejected, stored, the batch goes on."""

from odoo.tests import tagged

from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestUsageUnstorableInput(IotUsageCommon):
    def test_unstorable_entries_are_rejected_and_kept(self):
        deep = []
        for _level in range(3000):
            deep = [deep]
        cases = [
            (self._reading(message_id="\ud800"), "not valid Unicode"),
            (self._reading(identifier="\udcffU"), "not valid Unicode"),
            (self._reading(message_id="n\x00ul"), "NUL character"),
            (self._reading(identifier="NOPE\x00"), "NUL character"),
            (self._reading(payload={"x": float("nan")}), "not valid JSON"),
            (self._reading(payload={"x": "\x00"}), "NUL character"),
            (self._reading(payload={"x": deep}), "nesting too deep"),
            (self._reading(quantity=10**5000), "too large"),
        ]
        result = self.api.api_ingest([self._reading(message_id="good")] + [entry for entry, _r in cases])
        self.assertEqual(result["accepted"], 1)
        for item, (_entry, reason) in zip(result["rejected"], cases, strict=True):
            self.assertIn(reason, item["reason"])
        self.assertEqual(self.Reject.search_count([]), len(cases), "nothing dropped")

    def test_event_payload_nan_or_nul_is_rejected_per_entry(self):
        event = {"identifier": "U-1", "event_type": "x", "timestamp": "2022-04-14T10:00:00Z"}
        result = self.env["iot_billing.device"].with_user(self.integration_user).api_post_events([
            dict(event, payload={"a": float("inf")}), dict(event, payload={"a": "\x00"}),
            dict(event, message_id="ok")])
        self.assertEqual(result["accepted"], 1)
        self.assertEqual([item["index"] for item in result["rejected"]], [0, 1])
