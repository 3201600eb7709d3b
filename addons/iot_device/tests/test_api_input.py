from datetime import UTC, datetime

from odoo.tests import TransactionCase, tagged

from ..tools import ApiInputError, check_batch, parse_utc_timestamp, require_text


@tagged("post_install", "-at_install")
class TestApiInput(TransactionCase):
    def test_timestamp_with_zone_is_converted_to_naive_utc(self):
        self.assertEqual(
            parse_utc_timestamp("2022-04-14T10:30:00+02:00"), datetime(2022, 4, 14, 8, 30)
        )
        self.assertEqual(parse_utc_timestamp("2022-04-14T08:30:00Z"), datetime(2022, 4, 14, 8, 30))

    def test_timestamp_refusals(self):
        now = datetime(2022, 5, 1, tzinfo=UTC)
        cases = {
            "2022-04-14T10:30:00": "no time zone",
            "14/04/2022": "not ISO 8601",
            "1970-01-01T00:00:00Z": "before",
            "2022-05-03T00:00:00Z": "future",
        }
        for value, reason in cases.items():
            with self.subTest(value=value), self.assertRaisesRegex(ApiInputError, reason):
                parse_utc_timestamp(value, now)
        with self.assertRaisesRegex(ApiInputError, "ISO 8601 string"):
            parse_utc_timestamp(1650000000)

    def test_text_fields(self):
        self.assertEqual(require_text({"k": "  abc "}, "k", 10), "abc")
        self.assertIsNone(require_text({}, "k", 10, required=False))
        for entry, reason in (
            ({}, "missing"),
            ({"k": 12}, "must be a string"),
            ({"k": "   "}, "blank"),
            ({"k": "x" * 11}, "longer than 10"),
            ({"k": "a\x00b"}, "NUL"),
        ):
            with self.subTest(entry=entry), self.assertRaisesRegex(ApiInputError, reason):
                require_text(entry, "k", 10)

    def test_batch_shape(self):
        check_batch([{}] * 3, limit=3)
        with self.assertRaisesRegex(ApiInputError, "exceeds the limit of 3"):
            check_batch([{}] * 4, limit=3)
        with self.assertRaisesRegex(ApiInputError, "expected a list"):
            check_batch({"identifier": "x"})
