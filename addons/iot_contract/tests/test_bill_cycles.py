from datetime import date

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import BaseCase, tagged
from odoo.tools.misc import format_date

from ..tools import period_bounds, split_periods
from .common import IotContractCommon


class TestAnniversaryPeriods(BaseCase):
    """The period arithmetic of anniversary cycles, month ends included."""

    def test_periods_count_from_the_anchor_and_come_back_to_the_31st(self):
        anchor = date(2026, 1, 31)
        periods = [(start, end) for start, end, _s, _e in split_periods(anchor, date(2026, 6, 29), "monthly", anchor)]
        self.assertEqual(periods, [
            (date(2026, 1, 31), date(2026, 2, 27)),
            (date(2026, 2, 28), date(2026, 3, 30)),
            (date(2026, 3, 31), date(2026, 4, 29)),
            (date(2026, 4, 30), date(2026, 5, 30)),
            (date(2026, 5, 31), date(2026, 6, 29)),
        ])

    def test_quarters_and_years_count_from_the_anchor_leap_day_included(self):
        self.assertEqual(
            period_bounds(date(2026, 5, 1), "quarterly", date(2026, 1, 17)), (date(2026, 4, 17), date(2026, 7, 16))
        )
        self.assertEqual(
            period_bounds(date(2026, 3, 1), "yearly", date(2024, 2, 29)), (date(2026, 2, 28), date(2027, 2, 27))
        )
        self.assertEqual(
            period_bounds(date(2026, 4, 16), "monthly", date(2026, 1, 17)), (date(2026, 3, 17), date(2026, 4, 16))
        )
        # Without an anchor: the calendar, as before.
        self.assertEqual(period_bounds(date(2026, 4, 16), "monthly"), (date(2026, 4, 1), date(2026, 4, 30)))


@tagged("post_install", "-at_install")
class TestBillCycles(IotContractCommon):
    """Anniversary cycles: a device activated on the 17th is billed from the 17th to the 16th."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tracker = cls._create_plan("Tracker Plan", "TRACKER", 15.0, cls.tax_10, iot_bill_cycle="anniversary")
        cls.gold = cls._create_plan("Tracker Gold", "TRACKER-GOLD", 30.0, cls.tax_10, iot_bill_cycle="anniversary")
        cls.api = cls.Device.with_user(cls.integration_user)

    def _device_on(self, identifier, day, plan=None, contract=None):
        device = self._pending_device(identifier)
        return self._activate(device, date_start=day, plan=plan or self.tracker, contract=contract)

    def _fees(self, item):
        return [
            (s.date_from, s.date_to, s.invoice_date, s.fixed_amount)
            for s in item.schedule_ids.sorted("date_from") if s.state != "cancelled"
        ]

    def test_started_on_the_17th_billed_17th_to_16th_at_each_period_end(self):
        item = self._device_on("ANNIV-17", "2026-04-17")
        self.assertEqual((item.bill_cycle, item.cycle_anchor), ("anniversary", date(2026, 4, 17)))
        self.assertEqual(self._fees(item)[:2], [
            (date(2026, 4, 17), date(2026, 5, 16), date(2026, 5, 16), 15.0),
            (date(2026, 5, 17), date(2026, 6, 16), date(2026, 6, 16), 15.0),
        ])
        self.assertEqual(len(self._fees(item)), 12)  # a 12-month term is 12 whole cycles
        self.assertEqual(item.date_end, date(2027, 4, 16))
        with freeze_time("2026-05-15"):
            self.assertFalse(self._run_billing("2026-05-15")["invoice_ids"])
        with freeze_time("2026-05-16"):
            invoice = self.env["account.move"].browse(self._run_billing("2026-05-16")["invoice_ids"])
        self.assertEqual(
            (invoice.invoice_date, invoice.amount_untaxed, invoice.amount_total), (date(2026, 5, 16), 15.0, 16.5)
        )
        label = "%s - %s" % (format_date(self.env, date(2026, 4, 17)), format_date(self.env, date(2026, 5, 16)))
        self.assertIn(label, invoice.invoice_line_ids.name)

    def test_started_on_the_31st_each_period_starts_on_the_31st_or_the_last_day(self):
        item = self._device_on("ANNIV-31", "2026-01-31")
        self.assertEqual(self._fees(item)[:4], [
            (date(2026, 1, 31), date(2026, 2, 27), date(2026, 2, 27), 15.0),
            (date(2026, 2, 28), date(2026, 3, 30), date(2026, 3, 30), 15.0),
            (date(2026, 3, 31), date(2026, 4, 29), date(2026, 4, 29), 15.0),
            (date(2026, 4, 30), date(2026, 5, 30), date(2026, 5, 30), 15.0),
        ])
        self.assertEqual(item.date_end, date(2027, 1, 30))

    def test_the_contract_overrides_the_plan_and_calendar_stays_the_default(self):
        calendar_item = self._device_on("CAL-17", "2026-04-17", plan=self.plan)
        self.assertEqual((calendar_item.bill_cycle, calendar_item.cycle_anchor), ("calendar", False))
        self.assertEqual(self._fees(calendar_item)[0], (date(2026, 4, 17), date(2026, 4, 30), date(2026, 4, 30), 7.0))
        forced = self.env["iot.contract"].create({
            "name": "Consumer", "reference": "CONSUMER-1", "partner_id": self.customer.id,
            "journal_id": self.sale_journal.id, "bill_cycle": "anniversary"})
        item = self._device_on("FORCED-17", "2026-04-17", plan=self.plan, contract=forced)
        self.assertEqual(self._fees(item)[0], (date(2026, 4, 17), date(2026, 5, 16), date(2026, 5, 16), 15.0))

    def test_plan_change_inside_a_cycle_keeps_the_anchor_and_prorates_both_plans(self):
        item = self._device_on("ANNIV-CHANGE", "2026-01-17")
        with freeze_time("2026-03-03"):
            result = self.api.api_change_plan(
                [{"identifier": "ANNIV-CHANGE", "plan": "TRACKER-GOLD", "date": "2026-03-03"}]
            )
        new_item = self.Item.browse(result[0]["contract_item_id"])
        self.assertEqual((new_item.bill_cycle, new_item.cycle_anchor), ("anniversary", date(2026, 1, 17)))
        # The cycle of the change, 17 Feb - 16 Mar, has 28 days: 14 on each plan.
        self.assertEqual(self._fees(item)[-1], (date(2026, 2, 17), date(2026, 3, 2), date(2026, 3, 16), 7.5))
        self.assertEqual(self._fees(new_item)[:2], [
            (date(2026, 3, 3), date(2026, 3, 16), date(2026, 3, 16), 15.0),
            (date(2026, 3, 17), date(2026, 4, 16), date(2026, 4, 16), 30.0),
        ])
        with freeze_time("2026-03-16"):
            invoices = self.env["account.move"].browse(self._run_billing("2026-03-16")["invoice_ids"])
        march = invoices.filtered(lambda move: move.invoice_date == date(2026, 3, 16))
        self.assertEqual(sorted(march.invoice_line_ids.mapped("price_subtotal")), [7.5, 15.0])

    def test_termination_inside_a_cycle_prorates_and_credits_by_the_cycles_days(self):
        advance = self.env["iot.contract"].create({
            "name": "Advance", "reference": "ANNIV-ADV", "partner_id": self.customer.id,
            "journal_id": self.sale_journal.id, "fixed_fee_timing": "advance"})
        item = self._device_on("ANNIV-END", "2026-01-17", contract=advance)
        with freeze_time("2026-02-17"):
            self._run_billing("2026-02-17")  # fees of 17 Jan and 17 Feb, in advance
        february = item.schedule_ids.filtered(lambda s: s.date_from == date(2026, 2, 17) and s.part == "fee")
        self.assertEqual((february.state, february.fixed_amount), ("invoiced", 15.0))
        with freeze_time("2026-03-01"):
            self.api.api_terminate([{"identifier": "ANNIV-END", "date": "2026-03-01"}])
        # Kept: 17 Feb - 1 Mar, 13 of the cycle's 28 days: 15 x 13 / 28 = 6.96; credited 8.04.
        refund = self.env["account.move"].search([("iot_contract_id", "=", advance.id)])
        self.assertEqual((refund.move_type, refund.amount_untaxed), ("out_refund", 8.04))
        self.assertIn(format_date(self.env, date(2026, 3, 2)), refund.invoice_line_ids.name)

    def test_cycle_of_an_invoiced_item_cannot_change(self):
        item = self._device_on("ANNIV-FIXED", "2026-04-17")
        with freeze_time("2026-05-16"):
            self._run_billing("2026-05-16")
        with self.assertRaisesRegex(UserError, "invoiced periods"):
            item.bill_cycle = "calendar"
        item.price_unit = 20.0  # what does not move periods still can change
        self.assertEqual(self._fees(item)[1][3], 20.0)
