"""Property-based bad input for ``iot.usage.api_ingest``: whatever a platform sends, every
entry gets an answer (accepted, duplicate or rejected with a reason), the valid entries of
the batch are stored, and every rejected entry is stored too: nothing dropped silently."""

import string
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo.addons.iot_device.tools import MAX_API_BATCH, ApiInputError
from odoo.tests import tagged

from .common import IotUsageCommon

# Text a JSON-RPC client can send and PostgreSQL can store (NUL and lone surrogates
# are covered by test_unstorable_text_*).
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=300)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12, minutes=-30))])
TIMESTAMPS = st.one_of(
    st.datetimes(timezones=ZONES).map(lambda moment: moment.isoformat()),  # year 1 .. 9999
    st.datetimes().map(lambda moment: moment.isoformat()),  # no zone
    TEXT,
    st.integers(),
    st.none(),
)
QUANTITIES = st.one_of(
    st.floats(),  # NaN, +-Infinity, negative, huge
    st.integers(min_value=-(10**30), max_value=10**30),
    st.decimals(allow_nan=True).map(str),
    TEXT,
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        TEXT)
NESTED = st.recursive(JSON_LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=3), st.dictionaries(TEXT, children, max_size=3)), max_leaves=10)
IDENTIFIERS = st.one_of(st.sampled_from(["U-1", "U-2", " U-3 ", "u-1", "U-1'; DROP TABLE iot_usage; --"]),
                        TEXT, TEXT.map(lambda t: "L" * 129 + t), st.integers(), st.none(), NESTED)


def entries(index):
    """An entry that may be right or wrong in any field, or not an entry at all."""
    entry = st.fixed_dictionaries({}, optional={
        "identifier": IDENTIFIERS,
        "metric": st.one_of(st.sampled_from(["kwh", "messages", "KWH", "litres"]), TEXT, NESTED),
        "quantity": QUANTITIES,
        "timestamp": TIMESTAMPS,
        "message_id": st.one_of(st.just("p-%d" % index), TEXT.filter(bool).map(lambda t: "p-%d-%s" % (index, t)),
                                st.integers(), NESTED),
        "payload": st.one_of(st.dictionaries(TEXT, NESTED, max_size=3), NESTED),
        "extra": NESTED,
    })
    return st.one_of(entry, NESTED)


@st.composite
def batches(draw):
    size = draw(st.integers(min_value=1, max_value=12))
    return [draw(entries(index)) for index in range(size)]


@tagged("post_install", "-at_install")
class TestUsageBadInputProperty(IotUsageCommon):
    def _counts(self):
        return self.Usage.search_count([]), self.Reject.search_count([])

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batch=batches(), position=st.integers(min_value=0, max_value=12))
    def test_every_entry_is_answered_and_kept(self, batch, position):
        self._example = getattr(self, "_example", 0) + 1
        # Unique message ids per example: what is stored can be counted exactly.
        for entry in batch:
            if isinstance(entry, dict) and isinstance(entry.get("message_id"), str):
                entry["message_id"] = "%d-%s" % (self._example, entry["message_id"])
        control = self._reading(message_id="control-%d" % self._example)
        position = min(position, len(batch))
        batch.insert(position, control)
        before = self._counts()
        result = self.api.api_ingest(batch)
        after = self._counts()

        rejected = result["rejected"]
        indices = [item["index"] for item in rejected]
        self.assertEqual(indices, sorted(set(indices)))
        self.assertNotIn(position, indices, "a valid entry is never rejected because of its neighbours")
        self.assertTrue(all(isinstance(item["reason"], str) and item["reason"] for item in rejected))
        self.assertEqual(result["accepted"] + result["duplicates"] + len(rejected), len(batch))
        self.assertEqual(after[0] - before[0], result["accepted"])
        self.assertGreaterEqual(result["accepted"], 1)
        # Every rejected entry is stored, except a repeat of one already stored under the
        # same (identifier as received, message id).
        self.assertEqual(after[1] - before[1] + self._repeated_rejects(batch, rejected), len(rejected))

    def _repeated_rejects(self, batch, rejected):
        """Rejected entries whose (identifier as received, message id) was already stored,
        in this batch or an earlier example: kept once by design (a re-sent reject)."""
        seen = self.__dict__.setdefault("_stored_rejects", set())
        repeats = 0
        for item in rejected:
            entry = batch[item["index"]]
            if not isinstance(entry, dict) or entry.get("message_id") is None:
                continue
            identifier = entry.get("identifier")
            key = ("" if identifier is None else str(identifier)[:128], str(entry["message_id"])[:255])
            repeats += key in seen
            seen.add(key)
        return repeats

    @settings(max_examples=60, deadline=None)
    @given(quantity=st.one_of(st.floats(), st.integers(-(10**20), 10**20), st.decimals().map(str)))
    def test_quantity_is_stored_exactly_or_rejected_with_a_reason(self, quantity):
        self._example = getattr(self, "_example", 0) + 1
        message_id = "q-%d" % self._example
        result = self.api.api_ingest([self._reading(quantity=quantity, message_id=message_id)])
        stored = self.Usage.search([("message_id", "=", message_id)])
        refused = self.Reject.search([("message_id", "=", message_id)])
        self.assertEqual(len(stored) + len(refused), 1, "stored as a reading or as a rejected one")
        if result["accepted"]:
            self.assertGreaterEqual(stored.quantity, 0)
        else:
            self.assertRegex(refused.reason, "quantity")
            self.assertRegex(result["rejected"][0]["reason"], "quantity")

    def test_table_of_timestamps_and_identifiers(self):
        now = datetime.now(UTC).replace(microsecond=0)
        cases = [
            ("0001-01-01T00:00:00+14:00", "out of range"),
            ("9999-12-31T23:59:59-14:00", "out of range"),
            ("0001-01-01T00:00:00Z", "before 2000"),
            ("9999-12-31T23:59:59Z", "future"),
            ((now + timedelta(days=2)).isoformat(), "future"),
            ("2022-04-14T10:00:00", "no time zone"),
            ("2022-02-30T10:00:00Z", "not ISO 8601"),
            ("", "not ISO 8601"),
        ]
        batch = [self._reading(timestamp=value) for value, _reason in cases]
        batch.append(self._reading(identifier="Ü-" + "ñ" * 126))  # unicode, 128 characters: unknown device
        batch.append(self._reading(identifier="x" * 129))
        batch.append(self._reading(identifier=string.printable))
        batch.append(self._reading(metric="kwh' OR '1'='1"))
        batch.append(self._reading(timestamp=(now - timedelta(hours=1)).isoformat()))  # valid
        result = self.api.api_ingest(batch)
        self.assertEqual(result["accepted"], 1)
        reasons = [item["reason"] for item in result["rejected"]]
        for reason, (_value, expected) in zip(reasons, cases, strict=False):
            self.assertIn(expected, reason)
        self.assertIn("unknown device", reasons[len(cases)])
        self.assertIn("longer than 128", reasons[len(cases) + 1])
        self.assertIn("unknown metric", reasons[len(cases) + 3])
        self.assertEqual(self.Reject.search_count([]), len(batch) - 1)

    def test_over_limit_batch_applies_nothing(self):
        before = self._counts()
        batch = [self._reading(message_id="big-%d" % n) for n in range(MAX_API_BATCH + 1)]
        with self.assertRaisesRegex(ApiInputError, "exceeds the limit of %d" % MAX_API_BATCH):
            self.api.api_ingest(batch)
        with self.assertRaisesRegex(ApiInputError, "expected a list"):
            self.api.api_ingest({"identifier": "U-1"})
        with self.assertRaisesRegex(ApiInputError, "source must be one of"):
            self.api.api_ingest([self._reading()], source="'; DROP TABLE x; --")
        self.assertEqual(self._counts(), before)
