from collections import Counter

from odoo.tests import freeze_time, tagged

from .common import IotOrganizationCommon


@tagged("post_install", "-at_install")
class TestReparenting(IotOrganizationCommon):
    """Re-parenting a subsidiary, or switching Bill Self / Bill Parent, in the middle of a period:
    each period is billed exactly once, to the payer when it is billed."""

    def _assert_each_period_billed_once(self, contract):
        schedules = contract.item_ids.schedule_ids.filtered(lambda schedule: schedule.state == "invoiced")
        lines = self.env["account.move.line"].search([("iot_schedule_ids", "in", schedules.ids)])
        billed = Counter(schedule.id for line in lines for schedule in line.iot_schedule_ids)
        self.assertEqual(set(billed), set(schedules.ids))
        self.assertEqual(set(billed.values()), {1}, "no schedule on two invoice lines")
        self.assertEqual(len(set(schedules.mapped("date_from"))), len(schedules.invoice_id),
                         "one invoice per period")

    def test_moved_to_another_parent_mid_period(self):
        contract = self._sub_contract(self.sub_north, "RP-MOVE", "plan_period", ["RPM-1", "RPM-2"], bill_to="parent")
        april = self._run("2022-04-30")
        self.assertEqual(april.partner_id, self.holding)
        with freeze_time("2022-05-15"):
            self.sub_north.parent_id = self.other_holding
        self.assertEqual(contract.iot_payer_id, self.other_holding)
        self.assertFalse(self._run_billing("2022-05-15")["invoice_ids"], "nothing due mid-May")
        may = self._run("2022-05-31")
        self.assertEqual(may.partner_id, self.other_holding)
        self.assertEqual(may.invoice_line_ids.filtered(lambda line: line.display_type == "product").mapped("name"),
                         ["Premium Fleet Subscription — May 2022 — 2 devices"])
        self.assertFalse(self._run_billing("2022-05-31")["invoice_ids"], "a second run bills nothing")
        self.assertEqual(april.amount_untaxed, may.amount_untaxed)
        self.assertEqual(april.state, "posted", "the old parent's invoice stays its own")
        self._assert_each_period_billed_once(contract)

    def test_moved_after_the_invoice_date_before_the_run(self):
        """A run that bills April on 3 May (a grace period, a run dated back) bills the payer of
        30 April; May goes to the new parent."""
        contract = self._sub_contract(self.sub_north, "RP-LATE", "plan_period", ["RPL-1"], bill_to="parent")
        with freeze_time("2022-05-03"):
            self.sub_north.parent_id = self.other_holding
        self.assertEqual(contract.iot_payer_ids.sorted("id").mapped("payer_id"), self.holding | self.other_holding)
        april = self._run("2022-04-30")
        may = self._run("2022-05-31")
        self.assertEqual((april.partner_id, may.partner_id), (self.holding, self.other_holding))
        self._assert_each_period_billed_once(contract)

    def test_moved_before_its_period_is_billed(self):
        contract = self._sub_contract(self.sub_south, "RP-EARLY", "plan", ["RPE-1"], bill_to="parent")
        with freeze_time("2022-04-15"):
            self.sub_south.parent_id = self.other_holding
        april = self._run("2022-04-30")
        self.assertEqual(april.partner_id, self.other_holding, "billed to the payer at the invoice date")
        self.assertFalse(self.env["account.move"].search([("partner_id", "=", self.holding.id)]))
        self._assert_each_period_billed_once(contract)

    def test_switched_between_self_and_parent(self):
        contract = self._sub_contract(self.sub_north, "RP-SWITCH", "plan", ["RPS-1"], bill_to="parent")
        april = self._run("2022-04-30")
        with freeze_time("2022-05-10"):
            contract.iot_bill_to = "self"
        may = self._run("2022-05-31")
        self.assertEqual((april.partner_id, may.partner_id), (self.holding, self.sub_north))
        self.assertFalse(may.invoice_line_ids.filtered(lambda line: line.display_type == "line_section"))
        self._assert_each_period_billed_once(contract)

    def test_unparented_mid_period_bills_itself_once(self):
        contract = self._sub_contract(self.sub_south, "RP-ORPHAN", "plan", ["RPO-1"], bill_to="parent")
        with freeze_time("2022-04-20"):
            self.sub_south.parent_id = False  # nobody to bill but itself
        april = self._run("2022-04-30")
        self.assertEqual(april.partner_id, self.sub_south)
        self.assertFalse(contract.iot_billed_to_parent)
        self.assertFalse(self._run_billing("2022-04-30")["invoice_ids"])
        self._assert_each_period_billed_once(contract)

    def test_cancelled_collective_invoice_is_billed_again_once(self):
        contract = self._sub_contract(self.sub_north, "RP-CANCEL", "plan", ["RPC-1"], bill_to="parent")
        april = self._run("2022-04-30")
        self.sub_north.parent_id = self.other_holding
        april.button_draft()
        april.button_cancel()
        again = self._run("2022-04-30")
        self.assertEqual(again.partner_id, self.holding, "the payer of April 30 still")
        self.assertEqual(again.amount_untaxed, april.amount_untaxed)
        self._assert_each_period_billed_once(contract)
