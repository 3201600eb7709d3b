from datetime import date

from freezegun import freeze_time

from odoo.tests import tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestSuspension(IotContractCommon):
    """Fees while suspended follow the plan: continue (default) or pause, prorated by days."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pausing_plan = cls._create_plan("Pausing plan", "PAUSING", 15.0, iot_suspended_fees="pause")
        cls.api = cls.Device.with_user(cls.integration_user)
        cls.api.api_register(
            [{"identifier": identifier, "partner": cls.customer.id} for identifier in ("SUSP-PAUSE", "SUSP-CONT")]
        )
        with freeze_time("2022-04-01"):
            result = cls.api.api_activate(
                [
                    {"identifier": "SUSP-PAUSE", "contract": "IOT-FLEET-001", "plan": "PAUSING"},
                    {"identifier": "SUSP-CONT", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                ]
            )
        cls.pausing, cls.continuing = (cls.Item.browse(entry["contract_item_id"]) for entry in result)

    def _fees(self, item):
        planned = item.schedule_ids.filtered(lambda s: s.state != "cancelled").sorted("date_from")
        return {s.date_from.strftime("%m"): s.fixed_amount for s in planned if s.date_from.year == 2022}

    def _transition(self, method, day):
        entries = [{"identifier": identifier, "date": day} for identifier in ("SUSP-PAUSE", "SUSP-CONT")]
        result = getattr(self.api, method)(entries)
        self.assertFalse([entry for entry in result if "error" in entry], result)

    def test_default_plan_keeps_billing_while_suspended(self):
        self.assertEqual(self.plan.iot_suspended_fees, "continue")
        self._transition("api_suspend", "2022-04-11")
        self.assertEqual(self.continuing.state, "suspended")
        self.assertEqual(self._fees(self.continuing)["04"], 15.0)
        self.assertEqual(self._fees(self.continuing)["05"], 15.0)

    @freeze_time("2022-05-01")
    def test_pausing_plan_bills_only_the_days_not_suspended(self):
        # Suspended 11-20 April (10 of 30 days), resumed on the 21st.
        self._transition("api_suspend", "2022-04-11")
        self.assertEqual(self._fees(self.pausing)["05"], 0.0, "suspended until further notice")
        self._transition("api_resume", "2022-04-21")
        self.assertEqual(
            [(s.date_from, s.date_to) for s in self.pausing.suspension_ids],
            [(date(2022, 4, 11), date(2022, 4, 20))],
        )
        self.assertEqual(self._fees(self.pausing)["04"], 10.0)
        self.assertEqual(self._fees(self.pausing)["05"], 15.0)
        self.assertEqual(self._fees(self.continuing)["04"], 15.0)
        result = self._run_billing("2022-04-30")
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(invoice.amount_untaxed, 25.0)  # 10.00 paused + 15.00 continuing
        pausing_line = invoice.invoice_line_ids.filtered(lambda line: line.product_id == self.pausing_plan)
        self.assertEqual((pausing_line.quantity, pausing_line.price_unit), (1.0, 10.0))

    def test_open_suspension_pauses_later_periods_until_resumed(self):
        self._transition("api_suspend", "2022-05-16")  # 16-31 May suspended: 15 of 31 days billed
        fees = self._fees(self.pausing)
        self.assertEqual((fees["04"], fees["05"], fees["06"], fees["07"]), (15.0, 7.26, 0.0, 0.0))
        self._transition("api_resume", "2022-07-01")
        fees = self._fees(self.pausing)
        self.assertEqual((fees["05"], fees["06"], fees["07"]), (7.26, 0.0, 15.0))
        with freeze_time("2022-07-01"):
            june = self._run_billing("2022-06-30")
        invoices = self.env["account.move"].browse(june["invoice_ids"])
        june_lines = invoices.filtered(lambda move: move.invoice_date == date(2022, 6, 30)).invoice_line_ids
        self.assertEqual(june_lines.product_id, self.plan, "only the continuing device pays June")
        self.assertEqual(
            self.pausing.schedule_ids.filtered(lambda s: s.date_from == date(2022, 6, 1)).state, "invoiced"
        )

    def test_suspended_and_resumed_the_same_day_costs_nothing(self):
        self._transition("api_suspend", "2022-04-11")
        self._transition("api_resume", "2022-04-11")
        self.assertFalse(self.pausing.suspension_ids)
        self.assertEqual(self._fees(self.pausing)["04"], 15.0)

    def test_overlapping_suspensions_dated_back_count_each_day_once(self):
        self._transition("api_suspend", "2022-04-11")
        self._transition("api_resume", "2022-04-21")
        self._transition("api_suspend", "2022-04-15")  # dated back into the first suspension
        self._transition("api_resume", "2022-04-26")
        # 11-25 April suspended: 15 of 30 days billed.
        self.assertEqual(self._fees(self.pausing)["04"], 7.5)
