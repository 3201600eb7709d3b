from decimal import Decimal

from odoo.tests import freeze_time, tagged

from .common import IotPrepaidCommon, tiers


@tagged("post_install", "-at_install")
@freeze_time("2022-04-20 12:00:00")
class TestPrepaidReservation(IotPrepaidCommon):
    """The credit an authorization holds is what rating then debits for the quantity used:
    the same calculator, at the margin of the period's usage so far."""

    def setUp(self):
        super().setUp()
        self._grant(100.0)
        self.Reservation = self.env["iot.wallet.reservation"].with_user(self.integration_user)

    def _authorize(self, quantity, identifier="U-1"):
        return self.Reservation._api_authorize(identifier, "kwh", Decimal(quantity))

    def _hold_then_use(self, quantity):
        """Authorize ``quantity`` kWh, confirm it: (amount held, amount debited)."""
        debited_before = self._debited(self.april_1)
        answer = self._authorize(quantity)
        self.assertTrue(answer["authorized"], answer)
        self.Reservation._api_confirm(answer["reservation_id"], Decimal(quantity))
        return Decimal(str(answer["amount"])), self._debited(self.april_1) - debited_before

    def test_graduated_tiers_are_held_at_the_margin(self):
        self.energy.write({"pricing": "graduated", "tier_ids": tiers((0, 1.0, 0), (10, 0.5, 0), (20, 0.25, 0))})
        self._ingest([self._reading(quantity="8", timestamp="2022-04-14T09:00:00Z")])  # 8.00 so far
        # 4 kWh from 8: 2 at 1.00 and 2 at 0.50.
        self.assertEqual(self._hold_then_use("4"), (Decimal("3.00"), Decimal("3.00")))
        # 12 kWh from 12: 8 at 0.50, 4 at 0.25.
        self.assertEqual(self._hold_then_use("12"), (Decimal("5.00"), Decimal("5.00")))
        self.assertLedgerConsistent()

    def test_open_holds_move_the_margin(self):
        self.energy.write({"pricing": "graduated", "tier_ids": tiers((0, 1.0, 0), (10, 0.5, 0))})
        first = self._authorize("8")
        second = self._authorize("4")  # priced after the first hold: 2 at 1.00, 2 at 0.50
        self.assertEqual((first["amount"], second["amount"]), (8.0, 3.0))
        self.assertEqual(self.wallet.reserved, 11.0)
        self.assertEqual(self.wallet.available, 89.0)

    def test_included_quantity_and_volume_tiers(self):
        self.energy.write({"included_quantity": 5.0})
        self._ingest([self._reading(quantity="3", timestamp="2022-04-14T09:00:00Z")])
        # 4 kWh from 3, 5 included: 2 billable at 0.50.
        self.assertEqual(self._hold_then_use("4"), (Decimal("1.00"), Decimal("1.00")))
        self.energy.write({"included_quantity": 0.0, "pricing": "volume",
                           "tier_ids": tiers((0, 1.0, 0), (10, 0.5, 0))})
        # Volume: reaching 10 reprices the whole period at 0.50 (7 kWh so far: 7.00 -> 6.00 at 12).
        amount = Decimal(str(self._authorize("5")["amount"]))
        self.assertEqual(amount, Decimal(0))  # the period costs less with it: nothing to hold

    def test_refusals(self):
        self.assertEqual(self._authorize("1", identifier="NOPE"), {"authorized": False, "reason": "unknown device"})
        self.assertEqual(self.Reservation._api_authorize("U-1", "nope", Decimal(1))["reason"], "unknown metric")
        answer = self._authorize("300")  # 150.00 > 100.00
        self.assertEqual(answer, {"authorized": False, "reason": "no credit", "balance": 100.0,
                                  "available": 100.0, "amount": 150.0})
        self.assertFalse(self.env["iot.wallet.reservation"].search([("wallet_id", "=", self.wallet.id)]))
