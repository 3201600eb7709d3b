from odoo.exceptions import UserError
from odoo.tests import freeze_time, tagged

from ..models.iot_revenue_share_settlement import SETTLEMENT_LOCK
from .common import RevenueShareCommon


@tagged("post_install", "-at_install")
class TestRules(RevenueShareCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lamps = cls._fleet(10, owner=cls.vendor)

    def test_cash_basis_waits_for_payment(self):
        self._percent_rule(30, basis="cash", product_tmpl_id=self.streetlight_plan.product_tmpl_id.id)
        invoice = self._bill("2022-04-30")
        self.assertFalse(self._settle("2022-04"), "not paid: nothing to share")
        self._pay(invoice, "2022-05-10")
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertFalse(self._settle("2022-04"), "paid after April: not April's")
        settlement = self._settle("2022-05")
        self.assertEqual(settlement.amount_total, self._percent_of(invoice.amount_untaxed, 30))
        self.assertFalse(self._settle("2022-05"))

    def test_fixed_amount_per_device_and_period(self):
        self.Rule.create({
            "name": "Pole rental", "product_tmpl_id": self.streetlight_plan.product_tmpl_id.id,
            "partner_id": self.installer.id, "share_type": "fixed", "amount": 0.37, "date_start": "2022-01-01",
        })
        self._bill("2022-04-30")
        settlement = self._settle("2022-04")
        self.assertEqual(settlement.partner_id, self.installer)
        self.assertEqual(settlement.move_id.amount_untaxed, 3.70)
        self.assertEqual(set(settlement.line_ids.mapped("kind")), {"device"})
        self.assertEqual(len(settlement.line_ids), 10)

    def test_tiered_percent_by_the_beneficiarys_volume(self):
        rule = self.Rule.create({
            "name": "Volume bonus", "product_tmpl_id": self.streetlight_plan.product_tmpl_id.id,
            "partner_id": self.installer.id, "share_type": "tiered", "applies_to": "fixed",
            "date_start": "2022-01-01",
            "tier_ids": [(0, 0, {"volume_from": 0, "percent": 5}), (0, 0, {"volume_from": 25, "percent": 12.5}),
                         (0, 0, {"volume_from": 1000, "percent": 20})],
        })
        self._bill("2022-04-30")
        # 10 lamps x 3.00 = 30.00 of fixed fees: the 12.5 % tier, on the whole volume
        settlement = self._settle("2022-04")
        self.assertEqual(settlement.amount_total, 3.75)
        self.assertEqual(set(settlement.line_ids.mapped("percent")), {12.5})
        self.assertEqual(rule._tier_percent(24), 5)

    def test_two_beneficiaries_on_one_contract(self):
        self._percent_rule(30)  # the plan's rule, replaced on this contract
        self._percent_rule(25, partner=self.vendor, contract_id=self.contract.id, applies_to="fixed")
        self._percent_rule(10, partner=self.installer, contract_id=self.contract.id, applies_to="usage")
        invoice = self._bill("2022-04-30")
        usage = sum(invoice.iot_schedule_ids.mapped("usage_amount"))
        settlements = self._settle("2022-04")
        by_partner = {settlement.partner_id: settlement for settlement in settlements}
        self.assertEqual(set(by_partner), {self.vendor, self.installer})
        self.assertEqual(by_partner[self.vendor].amount_total, 7.50)  # 25 % of 30.00
        self.assertEqual(by_partner[self.installer].amount_total, self._percent_of(usage, 10))
        self.assertEqual(set(by_partner[self.installer].line_ids.mapped("kind")), {"usage"})

    def test_device_rule_replaces_the_plans(self):
        self._percent_rule(30)
        special = self.lamps[0]
        self._percent_rule(50, partner=self.installer, device_id=special.id)
        invoice = self._bill("2022-04-30")
        settlements = self._settle("2022-04")
        installer = settlements.filtered(lambda settlement: settlement.partner_id == self.installer)
        schedule = invoice.iot_schedule_ids.filtered(lambda schedule: schedule.device_id == special)
        self.assertEqual(installer.amount_total, self._percent_of(schedule.amount_total, 50))
        vendor = settlements - installer
        self.assertEqual(
            vendor.amount_total, self._percent_of(invoice.amount_untaxed - schedule.amount_total, 30)
        )

    def test_rule_start_date_and_missing_owner(self):
        self._percent_rule(30, date_start="2022-05-01", product_tmpl_id=self.streetlight_plan.product_tmpl_id.id)
        self._bill("2022-04-30")
        self.assertFalse(self._settle("2022-04"), "April's invoice predates the rule")
        self.lamps.iot_owner_partner_id = False
        may = self._bill("2022-05-31")
        self.assertTrue(may)
        self.assertFalse(self._settle("2022-05"), "no owner, no beneficiary")

    def test_a_second_run_at_the_same_time_is_refused(self):
        self._percent_rule(30)
        self._bill("2022-04-30")
        with self.env.registry.cursor() as other:
            # another transaction (another worker) settling this company right now
            other.execute("SELECT pg_advisory_xact_lock(%s, %s)", [SETTLEMENT_LOCK, self.company.id])
            with self.assertRaises(UserError):
                self._settle("2022-04")
            other.rollback()
        self.assertTrue(self._settle("2022-04"), "once the other run is over")

    def test_monthly_cron_settles_last_month(self):
        self._percent_rule(30)
        invoice = self._bill("2022-04-30")
        with freeze_time("2022-05-05"):
            self.Settlement._cron_settle_previous_month()
        settlement = self.Settlement.search([("period", "=", "2022-04")])
        self.assertEqual(settlement.amount_total, self._percent_of(invoice.amount_untaxed, 30))
