from decimal import Decimal

from odoo.tests import BaseCase

from ..tools import allocate

CENT = Decimal("0.01")


class TestAllocation(BaseCase):
    def test_largest_remainder_reaches_the_target(self):
        raw = [Decimal(1) / 3] * 3
        self.assertEqual(allocate(raw, Decimal("1.00"), CENT), [Decimal("0.34"), Decimal("0.33"), Decimal("0.33")])

    def test_cents_go_to_the_largest_remainders(self):
        raw = [Decimal("0.104"), Decimal("0.118"), Decimal("0.108")]
        self.assertEqual(allocate(raw, Decimal("0.33"), CENT), [Decimal("0.10"), Decimal("0.12"), Decimal("0.11")])

    def test_negative_amounts(self):
        raw = [Decimal("-0.105"), Decimal("-0.105")]
        self.assertEqual(sum(allocate(raw, Decimal("-0.21"), CENT)), Decimal("-0.21"))

    def test_impossible_target_is_refused(self):
        with self.assertRaises(ValueError):
            allocate([Decimal("0.10")], Decimal("5.00"), CENT)
