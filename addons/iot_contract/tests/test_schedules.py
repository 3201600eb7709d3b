from datetime import date
from unittest.mock import patch

from freezegun import freeze_time

from odoo.tests import tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestSchedules(IotContractCommon):
    def _periods(self, item, states=("planned", "invoiced")):
        return [
            (s.date_from.isoformat(), s.date_to.isoformat(), s.fixed_amount)
            for s in item.schedule_ids.filtered(lambda s: s.state in states)
        ]

    @freeze_time("2022-04-15")
    def test_partial_first_and_last_periods_are_prorated_by_days(self):
        item = self._activate(self._pending_device("MID"), date_start="2022-04-15")
        periods = self._periods(item)
        self.assertEqual(len(periods), 13)
        # 16 days of 30 in April: 15.00 * 16 / 30 = 8.00; 14 days of 30 in April 2023: 7.00.
        self.assertEqual(periods[0], ("2022-04-15", "2022-04-30", 8.0))
        self.assertEqual(periods[1], ("2022-05-01", "2022-05-31", 15.0))
        self.assertEqual(periods[-1], ("2023-04-01", "2023-04-14", 7.0))
        self.assertEqual(item.date_end, date(2023, 4, 14))
        self.assertAlmostEqual(sum(p[2] for p in periods), 15.0 * 12, places=2)

    @freeze_time("2022-01-10")
    def test_proration_rounds_to_the_cent_at_the_end(self):
        plan = self._create_plan("Odd plan", "ODD", 10.0)
        item = self._activate(self._pending_device("ODD"), date_start="2022-01-10", plan=plan)
        # 22 days of 31: 10 * 22 / 31 = 7.0967... -> 7.10
        self.assertEqual(item.schedule_ids[0].fixed_amount, 7.10)
        self.assertEqual(item.schedule_ids[0].amount_total, 7.10)

    @freeze_time("2022-04-01")
    def test_quarterly_plan_follows_calendar_quarters(self):
        plan = self._create_plan("Quarterly", "QUARTER", 90.0, iot_billing_period="quarterly")
        item = self._activate(self._pending_device("Q"), date_start="2022-05-01", plan=plan)
        periods = self._periods(item)
        # May-June is 61 of the 91 days of Q2: 90 * 61 / 91 = 60.33
        self.assertEqual(periods[0], ("2022-05-01", "2022-06-30", 60.33))
        self.assertEqual(periods[1], ("2022-07-01", "2022-09-30", 90.0))
        self.assertEqual(periods[-1], ("2023-04-01", "2023-04-30", 29.67))
        self.assertEqual(len(periods), 5)

    @freeze_time("2022-06-10")
    def test_termination_cancels_future_and_prorates_current(self):
        device = self._pending_device("TERM")
        item = self._activate(device)
        april = item.schedule_ids[0]
        april.write({"state": "invoiced"})  # as if billed: must never change
        results = self.Device.with_user(self.integration_user).api_terminate(
            [{"identifier": "TERM", "date": "2022-06-10"}]
        )
        self.assertEqual(results, [{"identifier": "TERM", "state": "terminated"}])
        self.assertEqual(item.state, "terminated")
        self.assertEqual(item.date_end, date(2022, 6, 10))
        self.assertEqual(
            self._periods(item),
            [
                ("2022-04-01", "2022-04-30", 15.0),
                ("2022-05-01", "2022-05-31", 15.0),
                ("2022-06-01", "2022-06-10", 5.0),
            ],  # 15 * 10 / 30
        )
        cancelled = item.schedule_ids.filtered(lambda s: s.state == "cancelled")
        self.assertEqual(len(cancelled), 9)
        self.assertEqual(min(cancelled.mapped("date_from")), date(2022, 7, 1))
        self.assertEqual(april.state, "invoiced")
        event = self._events(device, "terminated")
        self.assertIn("2022-06-10", event.description)

    @freeze_time("2022-04-01")
    def test_date_change_replans_only_non_invoiced_schedules(self):
        item = self._activate(self._pending_device("MOVE"))
        item.schedule_ids[0].write({"state": "invoiced"})
        item.write({"duration_months": 6, "price_unit": 20.0})
        planned = item.schedule_ids.filtered(lambda s: s.state == "planned")
        self.assertEqual(item.date_end, date(2022, 9, 30))
        self.assertEqual(len(planned), 5)
        self.assertEqual(set(planned.mapped("fixed_amount")), {20.0})
        self.assertEqual(item.schedule_ids[0].fixed_amount, 15.0)  # invoiced: untouched
        self.assertEqual(len(item.schedule_ids.filtered(lambda s: s.state == "cancelled")), 6)
        # Extending again revives the cancelled periods, without duplicates.
        item.write({"duration_months": 12})
        self.assertEqual(len(item.schedule_ids), 12)
        self.assertEqual(len(item.schedule_ids.filtered(lambda s: s.state == "planned")), 11)

    @freeze_time("2022-05-02")
    def test_suspend_and_resume_follow_the_device(self):
        device = self._pending_device("SUS")
        item = self._activate(device)
        api = self.Device.with_user(self.integration_user)
        self.assertEqual(api.api_suspend([{"identifier": "SUS"}]), [{"identifier": "SUS", "state": "suspended"}])
        self.assertEqual(item.state, "suspended")
        results = api.api_suspend([{"identifier": "SUS"}, {"identifier": "NONE"}, {"date": "x"}])
        self.assertEqual(results[0]["error"], "cannot suspend a suspended device")
        self.assertEqual(results[1]["error"], "unknown device 'NONE'")
        self.assertIn("missing 'identifier'", results[2]["error"])
        self.assertEqual(api.api_resume([{"identifier": "SUS", "date": "2022-05-02"}])[0]["state"], "active")
        self.assertEqual(item.state, "running")
        self.assertEqual(len(self._events(device, "suspended")), 1)
        self.assertIn("2022-05-02", self._events(device, "resumed").description)

    @freeze_time("2022-04-01")
    def test_generation_is_one_create_for_a_batch(self):
        """300 devices, 3,600 schedules: one insert, with the related columns filled."""
        self.Device.with_user(self.integration_user).api_register(
            [{"identifier": "BULK-%04d" % n, "partner": self.customer.id} for n in range(300)]
        )
        Schedule = type(self.Schedule)
        original_insert = Schedule._iot_insert_schedules
        calls = []

        def counting_insert(records, vals_list):
            calls.append(len(vals_list))
            return original_insert(records, vals_list)

        with patch.object(Schedule, "_iot_insert_schedules", counting_insert):
            results = self.Device.with_user(self.integration_user).api_activate(
                [
                    {
                        "identifier": "BULK-%04d" % n,
                        "contract": "IOT-FLEET-001",
                        "plan": "PREMIUM-FLEET",
                        "date_start": "2022-04-01",
                    }
                    for n in range(300)
                ]
            )
        self.assertEqual(calls, [3600])
        self.assertTrue(all("contract_item_id" in result for result in results))
        schedules = self.Schedule.search([("contract_id", "=", self.contract.id)])
        self.assertEqual(len(schedules), 3600)
        self.assertEqual(len(schedules.device_id), 300)
        self.assertEqual(schedules.product_id, self.plan)
        self.assertEqual(schedules.company_id, self.company)
        self.assertEqual(schedules.currency_id, self.company.currency_id)
        self.assertEqual(set(schedules.mapped("state")), {"planned"})
        self.assertEqual(sum(schedules.mapped("amount_total")), 3600 * 15.0)
        device = self.Device.search([("identifier", "=", "BULK-0042")])
        self.assertEqual(len(device.current_item_id.schedule_ids), 12)
        self.assertEqual(device.schedule_count, 12)

    @freeze_time("2022-05-20")
    def test_terminating_from_the_device_form_ends_the_item_today(self):
        device = self._pending_device("UI-TERM")
        item = self._activate(device)
        device.with_user(self.iot_manager).action_terminate()
        self.assertEqual((item.state, item.date_end), ("terminated", date(2022, 5, 20)))
        may = item.schedule_ids.filtered(lambda s: s.date_from == date(2022, 5, 1))
        self.assertEqual((may.date_to, may.fixed_amount), (date(2022, 5, 20), 9.68))  # 15*20/31
        self.assertFalse(device.current_item_id)
        # April and the prorated May are still to be billed.
        self.assertEqual(len(item.schedule_ids.filtered(lambda s: s.state == "planned")), 2)
