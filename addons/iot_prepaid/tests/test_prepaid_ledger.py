import datetime
from decimal import Decimal

import psycopg2

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import freeze_time, new_test_user, tagged
from odoo.tools import mute_logger

from .common import IotPrepaidCommon


@tagged("post_install", "-at_install")
class TestPrepaidLedger(IotPrepaidCommon):

    def test_grants_pay_by_priority_then_expiry_then_age_within_scope(self):
        now = fields.Datetime.now()
        oldest = self._grant(1.0, name="oldest, no expiry")
        never = self._grant(2.0, name="no expiry")
        soon = self._grant(1.5, name="expires soon", expires_at=now + datetime.timedelta(days=30))
        later = self._grant(1.0, name="expires later", expires_at=now + datetime.timedelta(days=60))
        first = self._grant(2.5, name="priority 5", priority=5)
        other_device = self._grant(50.0, name="U-2 only", priority=1, device_ids=[Command.set(self.device_2.ids)])
        other_rule = self._grant(50.0, name="another rule", priority=1, calculator_ids=[Command.set(
            self.env["iot.usage.calculator"].create({
                "name": "Messages", "product_tmpl_id": self.prepaid_plan.product_tmpl_id.id,
                "metric_id": self.metric_messages.id, "unit_price": 0.01,
            }).ids)])
        self.assertEqual(self.wallet.balance, 108.0)
        # 12 kWh x 0.50 = 6.00 on U-1: priority 5 first (2.50), then by expiry (1.50, 1.00), then
        # the oldest grant without expiry (1.00) before the younger one (0.00 of 2.00 left to take).
        self._ingest([self._reading(quantity="12", timestamp="2022-04-14T09:00:00Z")])
        self.assertEqual(self._debited(self.april_1), Decimal("6.00"))
        self.assertEqual(
            [(grant.name, grant.remaining, grant.state) for grant in (first, soon, later, oldest, never)],
            [("priority 5", 0.0, "exhausted"), ("expires soon", 0.0, "exhausted"),
             ("expires later", 0.0, "exhausted"), ("oldest, no expiry", 0.0, "exhausted"),
             ("no expiry", 2.0, "active")],
        )
        self.assertEqual((other_device.remaining, other_rule.remaining), (50.0, 50.0), "out of their scope")
        # U-2's usage goes to its own grant first (priority 1, scoped to it).
        self._ingest([self._reading(identifier="U-2", quantity="4", timestamp="2022-04-14T09:00:00Z")])
        self.assertEqual(other_device.remaining, 48.0)
        self.assertEqual(self.wallet.balance, 100.0)
        self.assertLedgerConsistent()

    def test_usage_beyond_the_credit_takes_the_balance_below_zero_and_a_top_up_pays_it(self):
        self._grant(2.0)
        self._ingest([self._reading(quantity="10", timestamp="2022-04-14T09:00:00Z")])  # 5.00
        self.assertEqual((self.wallet.balance, self.wallet.available), (-3.0, -3.0))
        uncovered = self.Entry.search([("wallet_id", "=", self.wallet.id), ("grant_id", "=", False)])
        self.assertEqual(uncovered.mapped("amount"), [-3.0])
        grant = self._grant(10.0)
        # The new credit pays the 3.00 no grant covered: the balance is unchanged by it.
        self.assertEqual((self.wallet.balance, grant.remaining), (7.0, 7.0))
        self.assertLedgerConsistent()

    def test_re_rating_lower_gives_back_to_the_grants_that_paid(self):
        self.env["iot.usage.calculator"].create({
            "name": "Peak", "product_tmpl_id": self.prepaid_plan.product_tmpl_id.id, "metric_id": self.metric_kwh.id,
            "aggregation": "avg", "unit_price": 1.0,
        })
        grant = self._grant(100.0)
        self._ingest([self._reading(quantity="10", timestamp="2022-04-14T09:00:00Z")])  # 5.00 + 10.00
        self.assertEqual(grant.remaining, 85.0)
        self._ingest([self._reading(quantity="2", timestamp="2022-04-15T09:00:00Z")])  # 6.00 + 6.00
        self.assertEqual(grant.remaining, 88.0)
        self.assertEqual(self._debited(self.april_1), Decimal("12.00"))
        self.assertLedgerConsistent()

    def test_re_rating_lower_after_the_paying_grant_expired_gives_back_nothing(self):
        """A refund of usage an expired grant paid goes back to it and expires again: that credit
        would have expired had the usage not been; the balance stays the active grants' remainders."""
        peak = self.env["iot.usage.calculator"].create({
            "name": "Peak", "product_tmpl_id": self.prepaid_plan.product_tmpl_id.id, "metric_id": self.metric_kwh.id,
            "aggregation": "avg", "unit_price": 1.0,
        })
        now = fields.Datetime.now()
        expiring = self._grant(20.0, priority=1, expires_at=now + datetime.timedelta(hours=1))
        self._ingest([self._reading(quantity="10", timestamp="2022-04-14T09:00:00Z")])  # 5.00 + 10.00
        self.assertEqual(expiring.remaining, 5.0)
        lasting = self._grant(10.0)
        with freeze_time(now + datetime.timedelta(hours=2)):
            self.Wallet._cron_expire_grants()
            self.assertEqual((expiring.state, self.wallet.balance), ("expired", 10.0))
            # Energy 6.00 (+1.00, paid by the lasting grant), peak avg 6 kWh: 6.00 (-4.00, the
            # expired grant had paid it).
            self._ingest([self._reading(quantity="2", timestamp="2022-04-15T09:00:00Z")])
        self.assertEqual((self._debited(self.april_1, self.energy), self._debited(self.april_1, peak)),
                         (Decimal("6.00"), Decimal("6.00")))
        self.assertEqual((expiring.remaining, expiring.state, lasting.remaining), (0.0, "expired", 9.0))
        self.assertEqual(self.wallet.balance, 9.0, "the refund of expired credit does not come back")
        expiries = self.Entry.search([("grant_id", "=", expiring.id), ("kind", "=", "expiry")], order="id")
        self.assertEqual(expiries.mapped("amount"), [-5.0, -4.0])
        # The period's invoice deducts the credit that paid its usage: 11.00 + 1.00.
        self.assertEqual(self.april_1._iot_credit_applied()[self.april_1.id], Decimal("12.00"))
        self.assertLedgerConsistent()

    def test_expired_grant_remainder_leaves_the_balance(self):
        now = fields.Datetime.now()
        expiring = self._grant(10.0, expires_at=now + datetime.timedelta(hours=1))
        lasting = self._grant(5.0)
        self._ingest([self._reading(quantity="4", timestamp="2022-04-14T09:00:00Z")])  # 2.00 from the expiring one
        self.assertEqual((expiring.remaining, self.wallet.balance), (8.0, 13.0))
        with freeze_time(now + datetime.timedelta(hours=2)):
            self.Wallet._cron_expire_grants()
            self.assertEqual(expiring.state, "expired")
            self.assertEqual((expiring.remaining, self.wallet.balance), (0.0, 5.0))
            expiry = self.Entry.search([("grant_id", "=", expiring.id), ("kind", "=", "expiry")])
            self.assertEqual(expiry.amount, -8.0)
            # Usage after the expiry is paid by the other grant only.
            self._ingest([self._reading(quantity="2", timestamp="2022-04-15T09:00:00Z")])
            self.assertEqual((expiring.remaining, lasting.remaining), (0.0, 4.0))
        self.assertLedgerConsistent()

    def test_ledger_is_append_only(self):
        self._grant(5.0)
        entry = self.Entry.search([("wallet_id", "=", self.wallet.id)])
        self.assertEqual(len(entry), 1)
        with self.assertRaises(UserError):
            entry.sudo().write({"amount": 500.0})
        with self.assertRaises(UserError):
            entry.sudo().unlink()
        with self.assertRaises(UserError):
            self.Entry.sudo().create({"wallet_id": self.wallet.id, "kind": "grant", "amount": 1.0})
        with self.assertRaises(UserError):
            self.wallet.sudo().write({"balance": 1000.0})
        with self.assertRaises(psycopg2.errors.RaiseException), mute_logger("odoo.sql_db"), self.env.cr.savepoint():
            self.env.cr.execute("UPDATE iot_wallet_entry SET amount = 500 WHERE id = %s", [entry.id])
        with self.assertRaises(psycopg2.errors.RaiseException), mute_logger("odoo.sql_db"), self.env.cr.savepoint():
            self.env.cr.execute("DELETE FROM iot_wallet_entry WHERE id = %s", [entry.id])
        entry.invalidate_recordset()
        self.assertEqual((entry.amount, self.wallet.balance), (5.0, 5.0))

    def test_adjustments_by_the_billing_group_with_a_reason(self):
        grant = self._grant(5.0)
        wallet = self.wallet.with_user(self.billing_user)
        with self.assertRaises(UserError):
            wallet._adjust(2.0, " ", grant)
        with self.assertRaises(UserError):
            wallet._adjust(2.0, "goodwill")  # a positive adjustment names its grant
        clerk = new_test_user(self.env, login="iot_clerk", groups="iot_device.group_iot_user")
        with self.assertRaises(AccessError):
            self.wallet.with_user(clerk)._adjust(2.0, "goodwill", grant)
        wallet._adjust(2.0, "goodwill", grant)
        wallet._adjust(-1.25, "meter fault")
        with self.assertRaises(UserError):
            wallet._adjust(-100.0, "too much")
        adjustments = self.Entry.search([("wallet_id", "=", self.wallet.id), ("kind", "=", "adjustment")])
        self.assertEqual(sorted(adjustments.mapped("amount")), [-1.25, 2.0])
        self.assertEqual(set(adjustments.mapped("create_uid")), {self.billing_user})
        self.assertEqual((self.wallet.balance, grant.remaining), (5.75, 5.75))
        self.assertLedgerConsistent()

    def test_postpaid_items_are_not_rated(self):
        self.prepaid_contract.iot_prepaid = "postpaid"
        self._grant(5.0)
        self._ingest([self._reading(quantity="4", timestamp="2022-04-14T09:00:00Z")])
        self.assertEqual(self._debited(self.april_1), 0)
        self.assertEqual(self.wallet.balance, 5.0)
