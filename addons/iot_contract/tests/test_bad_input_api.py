"""Bad input for the device API (register, events, activate, transitions): one answer per
entry, a clear reason for the bad ones, the good ones applied; never a failed batch."""

from datetime import UTC

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.addons.iot_device.tools import ApiInputError, dump_payload, storable_text
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import IotContractCommon

TEXT = st.text(st.characters(exclude_characters="\x00"), max_size=200)  # lone surrogates included
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), TEXT)
NESTED = st.recursive(LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3)), max_leaves=8)
TIMESTAMPS = st.one_of(st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
                       st.datetimes().map(lambda d: d.isoformat()), TEXT, st.integers(), st.none())


@tagged("post_install", "-at_install")
class TestDeviceApiBadInput(IotContractCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.api = cls.Device.with_user(cls.integration_user)
        cls.api.api_register([{"identifier": "BAD-%d" % n} for n in range(3)])

    @settings(max_examples=40, deadline=None)
    @given(entries=st.lists(st.one_of(NESTED, st.fixed_dictionaries({}, optional={
        "identifier": st.one_of(st.sampled_from(["BAD-0", "BAD-1"]), TEXT, NESTED),
        "name": st.one_of(TEXT, NESTED), "device_type": st.one_of(st.just("test_meter"), TEXT, NESTED),
        "partner": st.one_of(st.integers(), TEXT, NESTED)})), min_size=1, max_size=8))
    def test_register_answers_every_entry(self, entries):
        results = self.api.api_register(entries + [{"identifier": "BAD-2"}])
        self.assertEqual(len(results), len(entries) + 1)
        for result in results:
            self.assertTrue(("error" in result and result["error"]) or ("id" in result and result["id"]), result)
        self.assertEqual(results[-1]["id"], self.Device.search([("identifier", "=", "BAD-2")]).id)

    @settings(max_examples=40, deadline=None)
    @given(entries=st.lists(st.one_of(NESTED, st.fixed_dictionaries({}, optional={
        "identifier": st.one_of(st.sampled_from(["BAD-0", "BAD-1"]), TEXT, NESTED),
        "event_type": st.one_of(st.just("door_open"), TEXT, NESTED), "timestamp": TIMESTAMPS,
        "message_id": st.one_of(TEXT, NESTED), "payload": st.one_of(st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")), st.integers(),
            max_size=2), st.integers(), TEXT)})), min_size=1, max_size=8))
    def test_post_events_answers_every_entry(self, entries):
        self._example = getattr(self, "_example", 0) + 1
        good = {"identifier": "BAD-0", "event_type": "ok", "timestamp": "2022-04-14T10:00:00Z",
                "message_id": "good-%d" % self._example}
        result = self.api.api_post_events(entries + [good])
        self.assertEqual(result["accepted"] + result["duplicates"] + len(result["rejected"]), len(entries) + 1)
        self.assertNotIn(len(entries), [item["index"] for item in result["rejected"]])
        self.assertTrue(all(item["reason"] for item in result["rejected"]))
        self.assertGreaterEqual(result["accepted"], 1)

    def test_unstorable_text_is_refused_per_entry(self):
        """Lone surrogates (valid JSON escapes) and out-of-range timestamps used to fail the whole call."""
        results = self.api.api_register([{"identifier": "\ud800X"}, {"identifier": "BAD-OK"}])
        self.assertIn("not valid Unicode", results[0]["error"])
        self.assertTrue(results[1]["created"])
        event = {"identifier": "BAD-0", "event_type": "x", "message_id": "e-1"}
        result = self.api.api_post_events([
            dict(event, timestamp="9999-12-31T23:00:00-05:00"),
            dict(event, timestamp="0001-01-01T00:30:00+01:00"),
            dict(event, event_type="\udcff", timestamp="2022-04-14T10:00:00Z"),
            dict(event, timestamp="2022-04-14T10:00:00Z"),
        ])
        self.assertEqual(result["accepted"], 1)
        self.assertEqual([item["reason"] for item in result["rejected"]], [
            "timestamp '9999-12-31T23:00:00-05:00' is out of range",
            "timestamp '0001-01-01T00:30:00+01:00' is out of range",
            "'event_type' is not valid Unicode text (lone surrogate)",
        ])

    def test_activation_dates_out_of_range_are_refused(self):
        entry = {"identifier": "BAD-1", "contract": self.contract.reference, "plan": self.plan.default_code}
        results = self.api.api_activate([
            dict(entry, date_start="9999-12-01"),  # used to fail the call: "year 10000 is out of range"
            dict(entry, date_start="0001-01-01"),  # used to create (and bill) 12 periods of year 1
            dict(entry, date_start="2022-04-01", duration_months=0),
            dict(entry, contract=10**20),
            dict(entry, plan=["PREMIUM-FLEET"]),
            dict(entry, identifier="BAD-2", date_start="2022-04-01"),
        ])
        self.assertIn("more than 100 years ahead", results[0]["error"])
        self.assertIn("before 2000-01-01", results[1]["error"])
        self.assertIn("duration_months", results[2]["error"])
        self.assertIn("unknown contract", results[3]["error"])
        self.assertIn("must be an id or a reference", results[4]["error"])
        self.assertEqual(results[5]["state"], "active")
        self.assertFalse(self.Device.search([("identifier", "=", "BAD-1")]).contract_item_ids)
        suspended = self.api.api_suspend([{"identifier": "BAD-2", "date": "12022-01-01"}])
        self.assertIn("is not a 'YYYY-MM-DD' date", suspended[0]["error"])

    def test_payload_and_text_helpers(self):
        """The helpers ingestion and events use to keep unstorable values to one entry."""
        for payload in ({"a": float("nan")}, {"a": float("inf")}, {"a": "\x00"}, {"\ud800": 1}, [1]):
            with self.subTest(payload=payload), self.assertRaises(ApiInputError):
                dump_payload(payload)
        self.assertEqual(dump_payload({"a": [1, "é"]}), '{"a": [1, "\\u00e9"]}')
        self.assertEqual(storable_text("a\x00b\ud800", 10), "a\\x00b\\ud800")
        self.assertIsNone(storable_text(None))

    def test_iot_user_cannot_post_invoices_billing_user_can_bill(self):
        self._activate(self._pending_device("BAD-INV"), date_start="2022-04-01")
        self.contract.auto_post = False
        result = self._run_billing("2022-04-30")  # as the Billing user (accountant)
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(invoice.state, "draft")
        with self.assertRaises(AccessError):
            invoice.with_user(self.iot_user).action_post()
        with self.assertRaises(AccessError):
            invoice.with_user(self.iot_manager).action_post()
        invoice.with_user(self.billing_user).action_post()
        self.assertEqual(invoice.state, "posted")
