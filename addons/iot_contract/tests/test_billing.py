from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestBilling(IotContractCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with freeze_time("2022-04-01"):
            cls.device = cls.Device.create(
                {"name": "IOT_NS542", "identifier": "NS542", "partner_id": cls.customer.id, "state": "pending"}
            )
            cls.env["iot_billing.device"].with_user(cls.integration_user).api_activate(
                [
                    {
                        "identifier": "NS542",
                        "contract": "IOT-FLEET-001",
                        "plan": "PREMIUM-FLEET",
                        "date_start": "2022-04-01",
                    }
                ]
            )
        cls.item = cls.device.current_item_id

    def _april(self):
        return self.item.schedule_ids.filtered(lambda s: s.date_from == date(2022, 4, 1))

    @freeze_time("2022-04-30")
    def test_story_end_of_april_invoice(self):
        result = self._run_billing("2022-04-30")
        self.assertEqual(result["errors"], [])
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.name, "INV/2022/04/0001")
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.move_type, "out_invoice")
        self.assertEqual(invoice.partner_id, self.customer)
        self.assertEqual(invoice.invoice_date, date(2022, 4, 30))
        self.assertEqual(invoice.journal_id, self.sale_journal)
        line = invoice.invoice_line_ids
        self.assertEqual(len(line), 1)
        self.assertEqual(line.name, "IOT_NS542 — Premium Fleet Subscription — April 2022")
        self.assertEqual(line.product_id, self.plan)
        self.assertEqual((line.quantity, line.price_unit), (1.0, 15.0))
        self.assertEqual(line.tax_ids, self.tax_10)
        self.assertEqual((line.iot_period_from, line.iot_period_to), (date(2022, 4, 1), date(2022, 4, 30)))
        self.assertEqual(invoice.amount_untaxed, 15.0)
        self.assertEqual(invoice.amount_tax, 1.5)
        self.assertEqual(invoice.amount_total, 16.5)
        april = self._april()
        self.assertEqual(april.state, "invoiced")
        self.assertEqual(april.invoice_id, invoice)
        self.assertEqual(april.invoice_line_ids, line)
        self.assertEqual(line.iot_schedule_ids, april)
        self.assertEqual(len(self.item.schedule_ids.filtered(lambda s: s.state == "planned")), 11)
        run = self.BillingRun.browse(result["run_id"])
        self.assertEqual((run.state, run.schedule_count, run.invoice_count, run.contract_count), ("done", 1, 1, 1))
        self.assertEqual(invoice.iot_billing_run_id, run)

        # Re-run: nothing planned is due any more, nothing new.
        again = self._run_billing("2022-04-30")
        self.assertEqual((again["invoice_ids"], again["errors"]), ([], []))
        self.assertEqual(self.BillingRun.browse(again["run_id"]).schedule_count, 0)
        self.assertEqual(len(april.invoice_line_ids), 1)

    @freeze_time("2022-06-01")
    def test_numbering_restarts_every_month(self):
        other = self.env["res.partner"].create({"name": "Second customer"})
        contract = self.env["iot.contract"].create({"name": "Second", "reference": "SECOND", "partner_id": other.id})
        self.Item.create(
            {"contract_id": contract.id, "product_id": self.plan.id, "date_start": "2022-04-01", "name": "Plain"}
        )
        april = self._run_billing("2022-04-30")
        may = self._run_billing("2022-05-31")

        def names(result):
            return sorted(self.env["account.move"].browse(result["invoice_ids"]).mapped("name"))

        self.assertEqual(names(april), ["INV/2022/04/0001", "INV/2022/04/0002"])
        self.assertEqual(names(may), ["INV/2022/05/0001", "INV/2022/05/0002"])

    @freeze_time("2022-04-30")
    def test_monthly_numbering_takes_over_a_yearly_journal(self):
        self.sale_journal.iot_monthly_sequence = False
        manual = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.customer.id,
                "invoice_date": "2022-04-10",
                "journal_id": self.sale_journal.id,
                "invoice_line_ids": [
                    Command.create({"name": "Setup", "price_unit": 50.0, "tax_ids": [Command.clear()]})
                ],
            }
        )
        manual.action_post()
        self.assertEqual(manual.name, "INV/2022/00001")
        self.sale_journal.iot_monthly_sequence = True
        result = self._run_billing("2022-04-30")
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(invoice.name, "INV/2022/04/0001")

    @freeze_time("2022-06-15")
    def test_late_run_makes_one_invoice_per_period(self):
        result = self._run_billing("2022-06-15")
        invoices = self.env["account.move"].browse(result["invoice_ids"]).sorted("invoice_date")
        self.assertEqual(invoices.mapped("invoice_date"), [date(2022, 4, 30), date(2022, 5, 31)])
        self.assertEqual(invoices.mapped("name"), ["INV/2022/04/0001", "INV/2022/05/0001"])
        self.assertEqual(invoices.mapped("amount_total"), [16.5, 16.5])

    @freeze_time("2022-05-01")
    def test_in_advance_and_draft_invoices(self):
        contract = self.env["iot.contract"].create(
            {
                "name": "Advance",
                "reference": "ADV",
                "partner_id": self.customer.id,
                "fixed_fee_timing": "advance",
                "auto_post": False,
            }
        )
        item = self.Item.create(
            {"contract_id": contract.id, "product_id": self.plan.id, "date_start": "2022-04-15", "name": "Ahead"}
        )
        fees = item.schedule_ids.filtered(lambda schedule: schedule.part == "fee")
        self.assertEqual(fees[1].invoice_date, date(2022, 5, 1))
        # The period's usage has its own schedule, due at the period's end.
        usage = item.schedule_ids.filtered(lambda schedule: schedule.part == "usage")
        self.assertEqual((usage[0].invoice_date, usage[0].fixed_amount), (date(2022, 4, 30), 0.0))
        result = self._run_billing("2022-05-01")
        invoices = self.env["account.move"].browse(result["invoice_ids"])
        advance = invoices.filtered(lambda move: move.partner_id == self.customer and move.invoice_origin == "ADV")
        self.assertEqual(advance.mapped("state"), ["draft", "draft"])
        # April (8.00, 16 days) and May (15.00): both periods have started.
        self.assertEqual(sorted(advance.mapped("amount_untaxed")), [8.0, 15.0])
        self.assertEqual(item.schedule_ids.filtered(lambda s: s.state == "invoiced").invoice_id, advance)

    @freeze_time("2022-04-30")
    def test_failing_contract_does_not_block_the_others(self):
        # The broken plan's income account was deprecated: posting its invoice fails.
        account = self.env["account.account"].create(
            {"name": "Old IoT income", "code": "799001", "account_type": "income"}
        )
        broken_plan = self._create_plan("Legacy plan", "LEGACY", 9.0, property_account_income_id=account.id)
        account.deprecated = True
        broken = self.env["iot.contract"].create(
            {"name": "Broken", "reference": "BROKEN", "partner_id": self.customer.id}
        )
        broken_item = self.Item.create(
            {"contract_id": broken.id, "product_id": broken_plan.id, "date_start": "2022-04-01", "name": "Legacy"}
        )
        result = self._run_billing("2022-04-30")
        self.assertEqual(len(result["errors"]), 1)
        self.assertEqual(result["errors"][0]["contract"], "BROKEN")
        self.assertIn("deprecated", result["errors"][0]["message"])
        self.assertEqual(len(result["invoice_ids"]), 1)
        self.assertEqual(self._april().state, "invoiced")
        self.assertEqual(broken_item.schedule_ids[0].state, "planned")
        self.assertFalse(broken_item.schedule_ids[0].invoice_line_ids)
        self.assertFalse(self.env["account.move"].search([("invoice_origin", "=", "BROKEN")]))
        run = self.BillingRun.browse(result["run_id"])
        self.assertEqual((run.state, run.error_ids.contract_id), ("error", broken))

    @freeze_time("2022-04-30")
    def test_two_companies_are_billed_apart(self):
        company_b = self.env["res.company"].create({"name": "IoT Company B"})
        self.env["account.chart.template"].try_loading("generic_coa", company_b, install_demo=False)
        self.env.user.company_ids |= company_b
        self.billing_user.company_ids |= company_b
        journal_b = self._sale_journal(company_b)
        self.assertTrue(journal_b.iot_monthly_sequence)  # on by default for new sales journals
        env_b = self.env(context=dict(self.env.context, allowed_company_ids=[company_b.id]))
        plan_b = env_b["product.product"].create(
            {
                "name": "Plan B",
                "default_code": "PLAN-B",
                "type": "service",
                "list_price": 30.0,
                "iot_is_plan": True,
                "company_id": company_b.id,
                "taxes_id": [Command.clear()],
            }
        )
        contract_b = env_b["iot.contract"].create(
            {"name": "Contract B", "reference": "IOT-FLEET-001", "partner_id": self.customer.id}
        )
        self.assertEqual(contract_b.company_id, company_b)
        item_b = env_b["iot.contract.item"].create(
            {"contract_id": contract_b.id, "product_id": plan_b.id, "date_start": "2022-04-01", "name": "B item"}
        )
        result_a = self._run_billing("2022-04-30")
        self.assertEqual(len(result_a["invoice_ids"]), 1)
        self.assertEqual(item_b.schedule_ids[0].state, "planned")
        result_b = self._run_billing("2022-04-30", company=company_b)
        invoice_b = self.env["account.move"].browse(result_b["invoice_ids"])
        self.assertEqual((invoice_b.company_id, invoice_b.amount_total), (company_b, 30.0))
        self.assertEqual(invoice_b.name, "INV/2022/04/0001")
        self.assertEqual(item_b.schedule_ids[0].state, "invoiced")
        self.assertEqual(self._april().invoice_id.company_id, self.company)

    @freeze_time("2022-04-30")
    def test_hooks_can_add_usage_parts(self):
        """What iot_usage does: value usage in hook 1, add a usage part in hook 2."""
        Schedule = type(self.Schedule)
        original_parts = Schedule._iot_invoice_line_parts

        def value_usage(schedules, run):
            schedules.write({"usage_quantity": 2.5, "usage_amount": 5.0})

        def parts(schedules):
            result = original_parts(schedules)
            for schedule in schedules:
                result.append(
                    {
                        "schedule_id": schedule.id,
                        "kind": "usage",
                        "product_id": self.plan.id,
                        "name": "usage",
                        "quantity": schedule.usage_quantity,
                        "price_unit": 2.0,
                        "amount": schedule.usage_amount,
                        "currency_id": schedule.currency_id.id,
                    }
                )
            return result

        from unittest.mock import patch

        with (
            patch.object(Schedule, "_iot_value_usage", value_usage),
            patch.object(Schedule, "_iot_invoice_line_parts", parts),
        ):
            result = self._run_billing("2022-04-30")
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(invoice.amount_untaxed, 20.0)
        april = self._april()
        self.assertEqual(april.amount_total, 20.0)
        self.assertEqual(len(invoice.invoice_line_ids), 2)
        # The base links the parts it knows (the fee); a module adding parts links its own
        # through hook 3, _iot_link_invoice_lines.
        self.assertEqual(april.fixed_line_id, invoice.invoice_line_ids.filtered(lambda line: line.name != "usage"))

    def test_cron_bills_every_company_due(self):
        with freeze_time("2022-05-01"):
            self.BillingRun._cron_run_billing()
        self.assertEqual(self._april().state, "invoiced")
        self.assertEqual(self._april().invoice_id.invoice_date, date(2022, 4, 30))

    def test_cron_runs_daily_and_bills_each_period_once(self):
        cron = self.env.ref("iot_contract.iot_billing_run_cron")
        self.assertEqual((cron.interval_number, cron.interval_type), (1, "days"))
        self.assertEqual(cron.name, "IoT: billing run")
        xmlid = self.env["ir.model.data"].search(
            [("module", "=", "iot_contract"), ("name", "=", "iot_billing_run_cron")]
        )
        self.assertTrue(xmlid.noupdate, "an administrator's schedule of the cron survives upgrades")
        earlier_runs = self.BillingRun.search([])
        for day in ("2022-04-29", "2022-04-30", "2022-05-01", "2022-05-02"):
            with freeze_time(day):
                self.BillingRun._cron_run_billing()
        # April (due 30 April) is billed by the 30 April run; the other days create no run.
        runs = self.BillingRun.search([("id", "not in", earlier_runs.ids)])
        self.assertEqual(runs.mapped("date"), [date(2022, 4, 30)])
        self.assertEqual(runs.invoice_ids, self._april().invoice_id)
        self.assertEqual(self._april().state, "invoiced")
