import base64
import csv
import io
from datetime import date
from decimal import Decimal

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from .common import IotBundleCommon


@tagged("post_install", "-at_install")
class TestBundleDetail(IotBundleCommon):
    """What a bundle billed, read back: the detail per option, billing in steps, the credit per option."""

    def _contract(self, reference, policy):
        contract = self.env["iot.contract"].create({
            "name": reference, "reference": reference, "partner_id": self.customer.id,
            "journal_id": self.sale_journal.id, "invoice_grouping": policy,
        })
        contract.action_start()
        return contract

    def _fleet(self, contract, prefix, count=6):
        """``count`` cameras activated two by two on different days of April (prorated differently);
        the first takes face recognition too."""
        items = [
            self._activate(self._pending_device("%s-%d" % (prefix, n)), "2022-04-%02d" % (1 + 3 * (n // 2)),
                           contract=contract, plan=self.bundle)
            for n in range(count)
        ]
        items[0].iot_option_ids = [Command.create({"product_id": self.face_option.id})]
        return items

    def _detail_rows(self, invoice):
        content = invoice.api_iot_invoice_detail(invoice.id, "csv")["content"]
        rows = list(csv.reader(io.StringIO(base64.b64decode(content).decode("utf-8-sig"))))
        return rows[1:-1], rows[-1]

    def _assert_detail_adds_up_per_line(self, invoice):
        body, totals = self._detail_rows(invoice)
        lines = invoice.invoice_line_ids.filtered(lambda line: line.display_type == "product")
        by_position = {}
        for row in body:
            by_position[int(row[11])] = by_position.get(int(row[11]), Decimal(0)) + Decimal(row[10])
        for position, line in enumerate(lines.sorted(lambda line: (line.sequence, line.id)), 1):
            self.assertEqual(by_position.pop(position, Decimal(0)), Decimal(str(line.price_subtotal)), line.name)
        self.assertFalse(by_position, "every row is on a line of the invoice")
        self.assertEqual(Decimal(totals[10]), Decimal(str(invoice.amount_untaxed)))
        self.assertEqual(sum(Decimal(row[10]) for row in body), Decimal(str(invoice.amount_untaxed)))
        self.assertEqual(invoice._iot_detail_row_counts()[invoice.id], len(body))
        return body

    @freeze_time("2022-05-02")
    def test_detail_rows_of_each_option_line_add_up_to_it(self):
        for policy in ("plan_period", "none"):
            with self.subTest(policy=policy):
                contract = self._contract("CAMS-" + policy, policy)
                self._fleet(contract, "D" + policy[:2].upper())
                run = self._run_billing("2022-04-30")
                invoice = self.env["account.move"].browse(run["invoice_ids"])
                self.assertEqual(len(invoice), 1, run)
                self.assertEqual(invoice.iot_schedule_ids.contract_id, contract)
                # plan_period: a line per option, price and period (3 + 2 + 2); none: per device and option
                self.assertEqual(len(invoice.invoice_line_ids), 7 if policy == "plan_period" else 13)
                body = self._assert_detail_adds_up_per_line(invoice)
                # One row per device and component: 6 cameras x 2 options + face recognition once.
                self.assertEqual(len(body), 13)
                self.assertEqual(
                    sum(Decimal(str(amount)) for amount in invoice.iot_schedule_ids.mapped("fixed_amount")),
                    Decimal(str(invoice.amount_untaxed)),
                )

    def test_billed_in_steps_as_at_once(self):
        with freeze_time("2022-05-02"):
            once, step = self._contract("CAMS-ONCE", "plan_period"), self._contract("CAMS-STEP", "plan_period")
            self._fleet(once, "ONCE", 8)
            self._fleet(step, "STEP", 8)
            self.env["ir.config_parameter"].set_param("iot_contract.billing_chunk_schedules", "3")
            run = self.env["iot.billing.run"].create({"date": date(2022, 4, 30)})
            run.write({"state": "running", "prepared": True})
            Schedule = self.env["iot.invoicing.schedule"]
            due = Schedule.search(run._due_schedule_domain() + [("contract_id", "=", once.id)])
            tally = self.env["iot.billing.engine"]._bill_contract(run, once, due.ids)
            self.assertFalse(tally.errors)
            expected = Schedule.browse(due.ids).invoice_id
            outcomes = []
            while (outcome := self.env["iot.billing.engine"]._bill_next_chunk(run)) != "finished":
                outcomes.append(outcome)
                self.assertLess(len(outcomes), 50, "the steps end")
        # 8 schedules, 3 a step: 3 stages, the invoice, 3 links, the posting.
        self.assertEqual(outcomes, ["billed"] * 8)
        invoice = Schedule.search([("contract_id", "=", step.id), ("invoice_date", "<=", "2022-04-30")]).invoice_id
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.state, "posted")

        def lines(move):
            return [(line.product_id, line.quantity, line.price_unit, line.price_subtotal, line.tax_ids)
                    for line in move.invoice_line_ids.sorted(lambda line: (line.sequence, line.id))]

        self.assertEqual(lines(invoice), lines(expected))
        self.assertEqual(len(invoice.invoice_line_ids), 9)
        self.assertEqual(
            (invoice.amount_untaxed, invoice.amount_total), (expected.amount_untaxed, expected.amount_total)
        )

        def detail(move):
            return sorted((row[3], row[10], row[11]) for row in self._assert_detail_adds_up_per_line(move))

        self.assertEqual(detail(invoice), detail(expected))
        components = invoice.iot_schedule_ids.iot_component_ids
        self.assertEqual(len(components), 17)
        self.assertEqual(components.move_line_id.move_id, invoice)

    def test_termination_credits_each_option_with_its_taxes_and_account(self):
        tax_20 = self.env["account.tax"].create(
            {"name": "IoT test VAT 20%", "amount": 20.0, "type_tax_use": "sale", "company_id": self.company.id}
        )
        income = self.env["account.account"].create(
            {"name": "Event recording income", "code": "706200", "account_type": "income"}
        )
        # Options of their own taxes and account: a plan billing one line per option accepts them.
        self.event_option.write({"taxes_id": [Command.set(tax_20.ids)], "property_account_income_id": income.id})
        self.contract.fixed_fee_timing = "advance"
        with freeze_time("2022-04-01"):
            item = self._activate(self._pending_device("CAM-T"), "2022-04-01", plan=self.bundle)
            invoice = self.env["account.move"].browse(self._run_billing("2022-04-01")["invoice_ids"])
        self.assertEqual((invoice.amount_untaxed, invoice.amount_tax), (9.0, 1.2))
        with freeze_time("2022-04-12"):
            item.device_id.with_context(iot_transition_date="2022-04-10").action_terminate()
        refund = self.env["account.move"].search([("reversed_entry_id", "=", invoice.id)])
        billed = {line.product_id: line for line in invoice.invoice_line_ids}
        # Each option: what it billed less its 10 days of 30: 6.00 - 2.00 and 3.00 - 1.00.
        credited = [
            (line.product_id, line.price_subtotal, line.tax_ids, line.account_id)
            for line in refund.invoice_line_ids.sorted("id")
        ]
        self.assertEqual(credited, [
            (self.continuous, 4.0, self.tax_10, billed[self.continuous].account_id),
            (self.event_option, 2.0, tax_20, income),
        ])
        self.assertEqual(billed[self.event_option].account_id, income)
        self.assertEqual((refund.amount_untaxed, refund.amount_tax, refund.amount_total), (6.0, 0.8, 6.8))
        self.assertTrue(self._period(item, 4).credit_line_id)
        # Nothing is credited twice.
        item._iot_credit_unused_fees()
        self.assertEqual(self.env["account.move"].search_count([("reversed_entry_id", "=", invoice.id)]), 1)
