from datetime import date
from unittest.mock import patch

from odoo.addons.iot_invoice_grouping.tools import iter_detail_rows
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import IotGroupingCommon


@tagged("post_install", "-at_install")
class TestBillingInSteps(IotGroupingCommon):
    """A contract larger than a chunk is billed in committed steps (stage, invoice, link, post):
    its invoice is the one the same contract would get billed at once, to the line and cent."""

    DEVICES = 20

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A second rule: two usage lines, whose order must be that of a contract billed at once.
        cls.env["iot.usage.calculator"].create(
            {"name": "Energy surcharge", "product_tmpl_id": cls.plan.product_tmpl_id.id,
             "metric_id": cls.metric.id, "pricing": "per_unit", "unit_price": 0.00003, "sequence": 20}
        )

    def _twin_fleets(self, policy):
        """Two contracts of the same devices, plans, usage: one to bill at once, one in steps."""
        contracts = []
        for twin in ("ONCE", "STEP"):
            reference = "GRP-%s-%s" % (twin, policy)
            contracts.append(self._fleet(reference, self.DEVICES, policy, "%s%s" % (twin, policy[:3])))
            self.env["iot.usage"].api_ingest([
                {"identifier": "%s%s-%05d" % (twin, policy[:3], n), "metric": "kwh",
                 "quantity": "%d.125" % (n * 3701 % 10007), "timestamp": "2022-04-20T00:00:00Z",
                 "message_id": "%s-%s-%d" % (twin, policy, n)}
                for n in range(self.DEVICES)
            ])
        return contracts

    def _april(self, contract):
        return self.env["iot.invoicing.schedule"].search(
            [("contract_id", "=", contract.id), ("invoice_date", "<=", "2022-04-30")]
        )

    def _running_run(self):
        self.env["ir.config_parameter"].set_param("iot_contract.billing_chunk_schedules", "7")
        run = self.env["iot.billing.run"].create({"date": date(2022, 4, 30)})
        run.write({"state": "running", "prepared": True})
        return run

    def _bill_at_once(self, run, contract):
        Schedule = self.env["iot.invoicing.schedule"]
        due = Schedule.search(run._due_schedule_domain() + [("contract_id", "=", contract.id)])
        tally = self.env["iot.billing.engine"]._bill_contract(run, contract, due.ids)
        self.assertFalse(tally.errors)
        return Schedule.browse(due.ids).invoice_id

    def _bill_in_steps(self, run):
        outcomes = []
        while (outcome := self.env["iot.billing.engine"]._bill_next_chunk(run)) != "finished":
            outcomes.append(outcome)
            self.assertLess(len(outcomes), 50, "the steps end")
        return outcomes

    def _lines(self, invoice):
        return [
            (line.name, line.quantity, line.price_unit, line.price_subtotal, line.tax_ids.ids, line.iot_member_count)
            for line in invoice.invoice_line_ids.sorted(lambda line: (line.sequence, line.id))
        ]

    def _detail(self, invoice):
        # Device names differ between the twins; what each row bills must not.
        rows = iter_detail_rows(self.env.cr, invoice.id, "en_US")
        return sorted((row[3], row[6], row[7] or "", row[8], row[9], row[10], row[11]) for row in rows)

    def test_steps_bill_what_one_go_bills(self):
        for policy in ("plan_period", "device_type"):
            with self.subTest(policy=policy):
                once, step = self._twin_fleets(policy)
                run = self._running_run()
                expected = self._bill_at_once(run, once)
                self.assertEqual(len(expected), 1)
                outcomes = self._bill_in_steps(run)
                # 20 schedules, 7 a step: 3 stages, the invoice, 3 links, the posting.
                self.assertEqual(outcomes, ["billed"] * 8)
                schedules = self._april(step)
                invoice = schedules.invoice_id
                self.assertEqual(len(invoice), 1)
                self.assertEqual(set(schedules.mapped("state")), {"invoiced"})
                self.assertEqual(invoice.state, "posted")
                self.assertEqual(invoice.iot_billing_run_id, run)
                self.assertEqual(self._lines(invoice), self._lines(expected))
                # A fee and two rules' usage, per device type with that policy.
                self.assertEqual(len(invoice.invoice_line_ids), 3 if policy == "plan_period" else 6)
                self.assertEqual(invoice.amount_total, expected.amount_total)
                self.assertEqual(self._detail(invoice), self._detail(expected))
                self._assert_exact(invoice)
                self.assertTrue(all(schedules.mapped("fixed_line_id")))
                self.assertEqual(schedules.valuation_ids.move_line_id.move_id, invoice)
                self.assertEqual(set(schedules.bucket_ids.mapped("state")), {"invoiced"})
                self.assertFalse(self.env["iot.billing.run.part"].search_count([("run_id", "=", run.id)]))
                self.assertFalse(self.env["iot.billing.run.line"].search_count([("run_id", "=", run.id)]))
                self.assertEqual((run.remaining_count, run.contract_count), (0, 1))
                self.assertEqual(run.schedule_count, self.DEVICES)
                self.assertEqual(run.invoice_count, 1)

    def test_invoice_under_construction_is_posted_by_its_run_only(self):
        step, _other = self._twin_fleets("plan_period")
        run = self._running_run()
        for _step in range(4):  # three stages, then the draft invoice (of the first contract)
            self.env["iot.billing.engine"]._bill_next_chunk(run)
        schedules = self._april(step)
        invoice = run.invoice_ids.filtered(lambda move: move.invoice_origin == step.reference)
        self.assertEqual((invoice.state, set(schedules.mapped("state"))), ("draft", {"billing"}))
        self.assertEqual(run.remaining_count, 2 * self.DEVICES, "the staged schedules are still to bill")
        with self.assertRaisesRegex(UserError, "still being built"):
            invoice.action_post()
        # Its periods are frozen: a termination would change what the invoice already sums up.
        with self.assertRaisesRegex(UserError, "being invoiced by a billing run"):
            schedules[0].contract_item_id.write({"date_end": date(2022, 4, 15)})
        # No other run takes the staged schedules.
        other = self.env["iot.billing.run"].create({"date": date(2022, 4, 30)})
        self.assertFalse(
            self.env["iot.invoicing.schedule"].search_count(
                other._due_schedule_domain() + [("contract_id", "=", step.id)]
            )
        )
        self._bill_in_steps(run)
        self.assertEqual(invoice.state, "posted")

    def test_contract_failing_at_its_invoice_is_due_again(self):
        _once, step = self._twin_fleets("plan_period")
        run = self._running_run()
        contract_model = type(self.env["iot.contract"])
        original = contract_model._iot_prepare_invoice_vals

        def failing(contract, invoice_date):
            if contract == step:
                raise UserError("no journal for this test")
            return original(contract, invoice_date)

        with patch.object(contract_model, "_iot_prepare_invoice_vals", failing):
            self._bill_in_steps(run)
        schedules = self._april(step)
        self.assertEqual(set(schedules.mapped("state")), {"planned"}, "staged schedules go back to planned")
        self.assertFalse(schedules.invoice_id)
        self.assertEqual(run.error_ids.contract_id, step)
        self.assertEqual(run.error_ids.schedule_count, self.DEVICES)
        self.assertIn("no journal for this test", run.error_ids.message)
        self.assertFalse(self.env["iot.billing.run.part"].search_count([("run_id", "=", run.id)]))
        self.assertEqual(run.remaining_count, 0, "a failed contract is not waited for")
        # The next run bills it.
        again = self._running_run()
        self._bill_in_steps(again)
        self.assertEqual(set(schedules.mapped("state")), {"invoiced"})
        self.assertEqual(schedules.invoice_id.state, "posted")

    def test_stage_and_unstage_reach_the_schedule_state_hook(self):
        """Stage and unstage change thousands of schedules' states in SQL: modules still follow
        them through the one hook every state change reaches (iot_usage moves its buckets)."""
        _once, step = self._twin_fleets("plan_period")
        run = self._running_run()
        schedule_model = type(self.env["iot.invoicing.schedule"])
        original_hook = schedule_model._iot_state_changed
        original_vals = type(self.env["iot.contract"])._iot_prepare_invoice_vals
        seen = []

        def recording_hook(schedules, state):
            if schedules.contract_id == step:  # the twin billed at once aside
                seen.append((state, len(schedules)))
            return original_hook(schedules, state)

        def failing(contract, invoice_date):
            if contract == step:
                raise UserError("no journal for this test")
            return original_vals(contract, invoice_date)

        with (
            patch.object(schedule_model, "_iot_state_changed", recording_hook),
            patch.object(type(self.env["iot.contract"]), "_iot_prepare_invoice_vals", failing),
        ):
            self._bill_in_steps(run)
        # 20 schedules staged 7 at a time, then all back to planned when the invoice failed.
        self.assertEqual(seen, [("billing", 7), ("billing", 7), ("billing", 6), ("planned", 20)])
        schedules = self._april(step)
        # Released as after an undone invoice: the usage waits to be valued anew by the next run.
        buckets = self.env["iot.usage.bucket"].search([("device_id", "in", schedules.device_id.ids)])
        self.assertEqual(len(buckets), self.DEVICES)
        self.assertEqual(set(buckets.mapped("state")), {"to_value"})
        self.assertFalse(buckets.schedule_id)
