from datetime import UTC, date, datetime

from freezegun import freeze_time

from odoo.tests import TransactionCase, tagged

from ..tools import (
    ApiInputError,
    check_batch,
    entry_identifier,
    parse_date,
    parse_utc_timestamp,
    require_identifier,
    require_text,
    resolve_by_id_or_code,
)


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

    def test_identifiers(self):
        self.assertEqual(require_identifier({"identifier": " SN-1 "}), "SN-1")
        with self.assertRaisesRegex(ApiInputError, "longer than 128"):
            require_identifier({"identifier": "x" * 129})
        # Error reports quote what the entry claims, whatever its shape; False marshals over XML-RPC.
        self.assertEqual(entry_identifier({"identifier": "y" * 200}), "y" * 128)
        self.assertIs(entry_identifier({"identifier": 12}), False)
        self.assertIs(entry_identifier(["SN-1"]), False)

    @freeze_time("2024-03-15")
    def test_dates(self):
        self.assertEqual(parse_date({"d": " 2024-02-29 "}, "d"), date(2024, 2, 29))
        self.assertIsNone(parse_date({"d": ""}, "d"))
        self.assertIsNone(parse_date({}, "d"))
        for value, reason in (
            (20240229, "'d' must be a 'YYYY-MM-DD' string"),
            ("29/02/2024", "'d' '29/02/2024' is not a 'YYYY-MM-DD' date"),
            ("1999-12-31", "'d' 1999-12-31 is before 2000-01-01"),
            ("2124-03-16", "'d' 2124-03-16 is more than 100 years ahead"),
        ):
            with self.subTest(value=value), self.assertRaises(ApiInputError) as caught:
                parse_date({"d": value}, "d")
            self.assertEqual(str(caught.exception), reason)
        self.assertEqual(parse_date({"d": "2124-03-15"}, "d"), date(2124, 3, 15))

    def test_resolve_by_id_or_code(self):
        Partner = self.env["res.partner"]
        first, second, other = Partner.create(
            [{"name": "B", "ref": "P-SHARED"}, {"name": "A", "ref": "P-SHARED"}, {"name": "C", "ref": "P-C"}]
        )
        keys = {first.id, "P-SHARED", "P-C", "P-NONE", 0}
        # A shared code goes to the oldest record by default; unknown keys are absent, not errors.
        found = resolve_by_id_or_code(Partner, keys, "ref", [])
        self.assertEqual(found, {first.id: first, "P-SHARED": first, "P-C": other})
        # order=None: the model's own order (partners by name).
        self.assertEqual(resolve_by_id_or_code(Partner, keys, "ref", [], order=None)["P-SHARED"], second)
        self.assertEqual(
            resolve_by_id_or_code(Partner, {first.id, "P-C"}, "ref", [("id", "!=", other.id)]), {first.id: first}
        )
