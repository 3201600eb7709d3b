"""The README's accounting rules, as an accountant would check them: amounts in the
contract's currency, taxes and fiscal positions as Odoo computes them, tax rounding with
grouped lines, three-decimal currencies, partial periods, no runs in the future."""

import base64
import csv
import io
from datetime import date

from odoo import Command
from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.exceptions import ValidationError
from odoo.tests import Form, freeze_time, tagged


@tagged("post_install", "-at_install")
class TestAccountingRules(IotContractCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.kwh = cls.env.ref("iot_usage.metric_kwh")
        cls.energy = cls.env["iot.usage.calculator"].create({
            "name": "Energy", "product_tmpl_id": cls.plan.product_tmpl_id.id, "metric_id": cls.kwh.id,
            "unit_price": 0.5,
        })
        cls.number = 0

    # ------------------------------------------------------------------ helpers
    def _contract(self, policy="none", **vals):
        TestAccountingRules.number += 1
        reference = "ACC-%d" % self.number
        contract = self.env["iot.contract"].create(dict(
            {"name": reference, "reference": reference, "partner_id": self.customer.id,
             "journal_id": self.sale_journal.id, "invoice_grouping": policy}, **vals))
        contract.action_start()
        return contract

    def _devices(self, contract, count, date_start="2022-04-01", plan=None):
        devices = []
        for _n in range(count):
            TestAccountingRules.number += 1
            device = self._pending_device("ACC-DEV-%d" % self.number)
            self._activate(device, date_start=date_start, contract=contract, plan=plan)
            devices.append(device)
        return devices

    def _ingest(self, readings):
        TestAccountingRules.number += 1
        result = self.env["iot.usage"].with_user(self.integration_user).api_ingest([
            {"identifier": device.identifier, "metric": "kwh", "quantity": quantity, "timestamp": timestamp,
             "message_id": "acc-%d-%d" % (self.number, n)}
            for n, (device, quantity, timestamp) in enumerate(readings)
        ])
        self.assertEqual(result["accepted"], len(readings), result)

    def _bill(self, contract, run_date="2022-04-30"):
        with freeze_time(run_date):
            result = self._run_billing(run_date)
        self.assertFalse(result["errors"], result["errors"])
        return self.env["account.move"].browse(result["invoice_ids"]).filtered(
            lambda move: move.invoice_origin == contract.reference)

    def _detail(self, invoice):
        content = invoice.api_iot_invoice_detail(invoice.id, "csv")["content"]
        return list(csv.reader(io.StringIO(base64.b64decode(content).decode("utf-8-sig"))))

    def _schedules_total(self, invoice):
        return invoice.currency_id.round(sum(invoice.iot_schedule_ids.mapped("amount_total")))

    def _rate(self, currency, day, rate):
        self.env["res.currency.rate"].create({"currency_id": currency.id, "name": day, "rate": rate,
                                              "company_id": self.company.id})

    # ------------------------------------------------------------------ 1. currency
    def test_usage_is_converted_into_the_contract_currency_at_the_invoice_date(self):
        company_currency = self.company.currency_id
        other = self.env.ref("base.EUR") if company_currency != self.env.ref("base.EUR") else self.env.ref("base.USD")
        other.active = True
        self._rate(other, "2022-01-01", 2.0)   # the fee is converted at the item's start
        self._rate(other, "2022-04-30", 2.5)   # usage at the invoice date
        contract = self._contract(currency_id=other.id)
        [device] = self._devices(contract, 1)
        self.assertEqual(device.contract_item_ids.price_unit, 30.0, "15.00 x 2.0")
        reading_rule = self.env["iot.usage.calculator"].create({
            "name": "Per reading", "contract_item_id": device.contract_item_ids.id, "metric_id": self.kwh.id,
            "unit_price": 0.333, "rounding": "reading",
        })
        self._ingest([(device, "1.1", "2022-04-10T00:00:00Z"), (device, "2.2", "2022-04-11T00:00:00Z")])
        invoice = self._bill(contract)
        self.assertEqual(invoice.currency_id, other)
        valuation = invoice.iot_schedule_ids.valuation_ids
        self.assertEqual(valuation.calculator_id, reading_rule)
        # 0.333 x 2.5 = 0.8325 a unit: 1.1 -> 0.91575 -> 0.92; 2.2 -> 1.8315 -> 1.83
        self.assertEqual((valuation.unit_price, valuation.amount), (0.8325, 2.75))
        self.assertEqual(invoice.amount_untaxed, 32.75)
        self.assertEqual(invoice.amount_untaxed, self._schedules_total(invoice))

    def test_tiers_flat_fees_and_minimum_are_converted_too(self):
        company_currency = self.company.currency_id
        other = self.env.ref("base.EUR") if company_currency != self.env.ref("base.EUR") else self.env.ref("base.USD")
        other.active = True
        self._rate(other, "2022-01-01", 2.0)
        contract = self._contract(currency_id=other.id)
        [device] = self._devices(contract, 1)
        item = device.contract_item_ids
        self.env["iot.usage.calculator"].create({
            "name": "Tiers", "contract_item_id": item.id, "metric_id": self.kwh.id, "pricing": "graduated",
            "minimum_amount": 20.0,
            "tier_ids": [Command.create({"from_quantity": 0, "unit_price": 1.0}),
                         Command.create({"from_quantity": 10, "unit_price": 0.5, "flat_fee": 3.0})],
        })
        self._ingest([(device, "12", "2022-04-10T00:00:00Z")])
        invoice = self._bill(contract)
        valuation = invoice.iot_schedule_ids.valuation_ids
        # (10 x 1.0 + 2 x 0.5 + 3.0) x 2.0 = 28.00, below the minimum of 20.00 x 2.0: 40.00
        self.assertEqual(valuation.amount, 40.0)
        self._ingest([(device, "30", "2022-05-10T00:00:00Z")])
        may = self._bill(contract, "2022-05-31")
        # (10 x 1.0 + 20 x 0.5 + 3.0) x 2.0 = 46.00
        self.assertEqual(may.iot_schedule_ids.valuation_ids.amount, 46.0)

    # ------------------------------------------------------------------ 2. taxes, fiscal positions
    def _included_tax_and_export_position(self):
        included = self.env["account.tax"].create({
            "name": "VAT 21% included", "amount": 21, "type_tax_use": "sale", "price_include_override": "tax_included",
            "company_id": self.company.id})
        zero = self.env["account.tax"].create({
            "name": "Export 0%", "amount": 0, "type_tax_use": "sale", "company_id": self.company.id})
        position = self.env["account.fiscal.position"].create({
            "name": "Export", "company_id": self.company.id,
            "tax_ids": [Command.create({"tax_src_id": included.id, "tax_dest_id": zero.id})]})
        plan = self._create_plan("Included Plan", "INCL-PLAN", 15.0, included)
        self.env["iot.usage.calculator"].create({
            "name": "Energy", "product_tmpl_id": plan.product_tmpl_id.id, "metric_id": self.kwh.id,
            "unit_price": 0.5})
        return included, position, plan

    def test_fiscal_position_adapts_a_price_included_tax_like_a_manual_invoice(self):
        _included, position, plan = self._included_tax_and_export_position()
        contract = self._contract(fiscal_position_id=position.id)
        [device] = self._devices(contract, 1, plan=plan)
        self._ingest([(device, "10", "2022-04-10T00:00:00Z")])
        invoice = self._bill(contract)
        manual = Form(self.env["account.move"].with_context(default_move_type="out_invoice"))
        manual.partner_id = self.customer
        manual.fiscal_position_id = position
        manual.invoice_date = date(2022, 4, 30)
        with manual.invoice_line_ids.new() as line:
            line.product_id = plan
        manual = manual.save()
        fee = invoice.iot_schedule_ids.fixed_line_id
        self.assertEqual((fee.price_unit, fee.price_subtotal, fee.price_total), (12.4, 12.4, 12.4))
        self.assertEqual(
            (fee.price_unit, fee.tax_ids, fee.price_total),
            (manual.invoice_line_ids.price_unit, manual.invoice_line_ids.tax_ids, manual.amount_total),
        )
        # Usage: 10 x 0.50 / 1.21 = 4.13 (the rule's price adapted the same way), no tax.
        self.assertEqual(invoice.amount_untaxed, 16.53)
        self.assertEqual(invoice.amount_tax, 0.0)
        rows = self._detail(invoice)
        self.assertEqual(rows[-1][0], "Total (tax excluded)")
        self.assertEqual(rows[-1][10], "16.53")

    def test_detail_of_price_included_taxes_adds_up_to_the_invoice_total(self):
        _included, _position, plan = self._included_tax_and_export_position()
        contract = self._contract(policy="plan_period")
        devices = self._devices(contract, 3, plan=plan)
        self._ingest([(device, "10", "2022-04-10T00:00:00Z") for device in devices])
        invoice = self._bill(contract)
        # 3 x 15.00 + 3 x 5.00, tax included: 60.00 in all, of which 21/121 tax.
        self.assertEqual(invoice.amount_total, 60.0)
        self.assertEqual(invoice.amount_untaxed + invoice.amount_tax, 60.0)
        rows = self._detail(invoice)
        self.assertEqual((rows[-1][0], rows[-1][10]), ("Total (tax included)", "60.00"))

    # ------------------------------------------------------------------ 3. grouping and tax rounding
    def _manual_tax(self, invoice):
        """The tax Odoo computes on a manual invoice with the same lines."""
        manual = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": self.customer.id, "invoice_date": invoice.invoice_date,
            "journal_id": invoice.journal_id.id,
            "invoice_line_ids": [
                Command.create({"product_id": line.product_id.id, "name": line.name, "quantity": line.quantity,
                                "price_unit": line.price_unit, "tax_ids": [Command.set(line.tax_ids.ids)]})
                for line in invoice.invoice_line_ids
            ],
        })
        return manual.amount_tax

    def test_tax_is_rounded_on_the_invoice_lines_as_printed(self):
        cheap = self._create_plan("Cheap Plan", "CHEAP", 0.10, self.tax_10.copy({"amount": 21, "name": "VAT 21"}))
        for method, (ungrouped_tax, grouped_tax) in (("round_per_line", (0.20, 0.21)),
                                                     ("round_globally", (0.21, 0.21))):
            with self.subTest(method=method):
                self.company.tax_calculation_rounding_method = method
                ungrouped = self._contract(policy="none")
                grouped = self._contract(policy="plan_period")
                self._devices(ungrouped, 10, plan=cheap)
                self._devices(grouped, 10, plan=cheap)
                with freeze_time("2022-04-30"):
                    result = self._run_billing("2022-04-30")
                self.assertFalse(result["errors"])
                invoices = self.env["account.move"].browse(result["invoice_ids"])
                one_by_one = invoices.filtered_domain([("invoice_origin", "=", ungrouped.reference)])
                merged = invoices.filtered_domain([("invoice_origin", "=", grouped.reference)])
                self.assertEqual((len(one_by_one.invoice_line_ids), len(merged.invoice_line_ids)), (10, 1))
                self.assertEqual(one_by_one.amount_untaxed, merged.amount_untaxed)
                # 10 lines of 0.021 each rounded to 0.02, or one line of 0.21.
                self.assertEqual((one_by_one.amount_tax, merged.amount_tax), (ungrouped_tax, grouped_tax))
                self.assertEqual(one_by_one.amount_tax, self._manual_tax(one_by_one))
                self.assertEqual(merged.amount_tax, self._manual_tax(merged))

    # ------------------------------------------------------------------ 4. three-decimal currencies
    def test_three_decimal_currency(self):
        kwd = self.env.ref("base.KWD")
        kwd.active = True
        self._rate(kwd, "2022-01-01", 0.307)
        contract = self._contract(policy="plan_period", currency_id=kwd.id)
        devices = self._devices(contract, 2) + self._devices(contract, 1, date_start="2022-04-11")
        self._ingest([(device, "7", "2022-04-20T00:00:00Z") for device in devices])
        with freeze_time("2022-04-30"):
            refused = self._run_billing("2022-04-30")
        self.assertIn("Product Price", refused["errors"][0]["message"])
        self.env.ref("product.decimal_price").digits = 3
        invoice = self._bill(contract)
        self.assertEqual(devices[0].contract_item_ids.price_unit, 4.605)  # 15 x 0.307
        self.assertEqual(devices[2].contract_item_ids.schedule_ids[0].fixed_amount, 3.07)  # 20/30 of it
        # 7 x 0.50 x 0.307 = 1.0745 -> 1.075 per device
        self.assertEqual(set(invoice.iot_schedule_ids.mapped("usage_amount")), {1.075})
        self.assertAlmostEqual(invoice.amount_untaxed, 2 * 4.605 + 3.07 + 3 * 1.075, places=3)
        self.assertEqual(invoice.amount_untaxed, self._schedules_total(invoice))
        rows = self._detail(invoice)
        self.assertEqual(rows[-1][10], "%.3f" % invoice.amount_untaxed)
        for line in invoice.invoice_line_ids:
            self.assertEqual(kwd.round(line.quantity * line.price_unit), line.price_subtotal, line.name)

    # ------------------------------------------------------------------ 5. partial periods
    def test_included_quantity_and_minimum_follow_a_partial_period(self):
        contract = self._contract()
        plan = self._create_plan("Allowance Plan", "ALLOW", 0.0)
        rule = self.env["iot.usage.calculator"].create({
            "name": "Allowance", "product_tmpl_id": plan.product_tmpl_id.id, "metric_id": self.kwh.id,
            "unit_price": 0.5, "included_quantity": 30, "minimum_amount": 3.0})
        [late] = self._devices(contract, 1, date_start="2022-04-30", plan=plan)  # 1 day of 30
        [full] = self._devices(contract, 1, plan=plan)
        self._ingest([(late, "5", "2022-04-30T10:00:00Z"), (full, "5", "2022-04-20T10:00:00Z")])
        invoice = self._bill(contract)
        amounts = {s.device_id: s.usage_amount for s in invoice.iot_schedule_ids}
        # 1 day: 1 kWh included, (5 - 1) x 0.50 = 2.00 (minimum 0.10). Full month: 30 included, minimum 3.00.
        self.assertEqual((amounts[late], amounts[full]), (2.0, 3.0))
        rule.prorate_partial_periods = False
        [late_again] = self._devices(contract, 1, date_start="2022-05-31", plan=plan)
        self._ingest([(late_again, "5", "2022-05-31T10:00:00Z")])
        may = self._bill(contract, "2022-05-31")
        self.assertEqual(may.iot_schedule_ids.filtered(lambda s: s.device_id == late_again).usage_amount, 3.0)

    # ------------------------------------------------------------------ 10. runs in the future
    def test_a_run_in_the_future_is_refused(self):
        with freeze_time("2022-04-30"), self.assertRaisesRegex(ValidationError, "after today"):
            self._run_billing("2022-05-01")

    # ------------------------------------------------------------------ 9. time zone of a period
    def test_periods_follow_the_contract_time_zone(self):
        # Kolkata's midnight falls at half past an UTC hour: its usage needs minute buckets.
        self.env["iot.usage.metric"].with_context(active_test=False).search([]).bucket_interval = "minute"
        for zone, readings, april, may in (
            # UTC+2 in spring: 22:30 UTC on 30 April is 00:30 on 1 May in Stockholm.
            ("Europe/Stockholm", [("1", "2022-03-31T22:30:00Z"), ("2", "2022-04-30T21:59:59Z"),
                                  ("4", "2022-04-30T22:30:00Z")], 3.0, 4.0),
            # A half-hour offset (UTC+5:30): 18:29 UTC is 23:59 local, 18:30 UTC the next day.
            ("Asia/Kolkata", [("1", "2022-03-31T18:30:00Z"), ("2", "2022-04-30T18:29:00Z"),
                              ("4", "2022-04-30T18:30:00Z")], 3.0, 4.0),
            ("UTC", [("1", "2022-03-31T22:30:00Z"), ("2", "2022-04-30T21:59:59Z"),
                     ("4", "2022-04-30T22:30:00Z")], 6.0, 0.0),
        ):
            with self.subTest(zone=zone):
                contract = self._contract(tz=zone)
                [device] = self._devices(contract, 1, date_start="2022-03-01")
                self._ingest([(device, quantity, timestamp) for quantity, timestamp in readings])
                schedules = device.contract_item_ids.schedule_ids
                invoice = self._bill(contract, "2022-05-31")
                by_month = {s.date_from.month: s for s in schedules}
                self.assertEqual(by_month[4].usage_quantity, april)
                self.assertEqual(by_month[5].usage_quantity, may)
                self.assertIn(by_month[4], invoice.iot_schedule_ids)
                wizard = self.env["iot.usage.calculator.test.wizard"].create({
                    "calculator_id": self.energy.id, "device_id": device.id,
                    "date_from": "2022-04-01", "date_to": "2022-04-30"})
                self.assertEqual(wizard.quantity, april, "the wizard reads the same local days")

    # ------------------------------------------------------------------ 6. usage in arrears
    def test_fees_in_advance_usage_in_arrears_each_in_its_own_period(self):
        contract = self._contract(fixed_fee_timing="advance")
        TestAccountingRules.number += 1
        device = self._pending_device("ACC-ADV-%d" % self.number)
        self._activate(device, date_start="2022-04-01", contract=contract, duration_months=2)
        self._ingest([(device, "10", "2022-04-12T00:00:00Z"), (device, "20", "2022-05-12T00:00:00Z")])
        billed = {}
        for run_date in ("2022-04-01", "2022-04-30", "2022-05-01", "2022-05-31", "2022-06-30"):
            billed[run_date] = self._bill(contract, run_date)
        lines = {day: invoices.invoice_line_ids for day, invoices in billed.items()}
        # The fee on the period's first day, its usage once the period has ended.
        self.assertEqual(lines["2022-04-01"].mapped("price_subtotal"), [15.0])
        self.assertEqual(lines["2022-04-30"].mapped("price_subtotal"), [5.0])
        self.assertIn("2022-04-01 to 2022-04-30", lines["2022-04-30"].name)
        self.assertEqual(lines["2022-05-01"].mapped("price_subtotal"), [15.0])
        # The last period's usage is billed after the term, labelled with its own period.
        self.assertEqual(lines["2022-05-31"].mapped("price_subtotal"), [10.0])
        self.assertIn("2022-05-01 to 2022-05-31", lines["2022-05-31"].name)
        self.assertFalse(billed["2022-06-30"])
        usage = self.env["iot.usage.bucket"].search([("device_id", "=", device.id)])
        self.assertEqual(set(usage.mapped("state")), {"invoiced"})
        self.assertFalse(any(usage.mapped("is_late")), "no usage waits for the next period")

    # ------------------------------------------------------------------ 7. nothing measured unbilled
    def test_a_reading_after_the_last_period_was_invoiced_is_billed_on_a_late_usage_line(self):
        contract = self._contract()
        TestAccountingRules.number += 1
        device = self._pending_device("ACC-LATE-%d" % self.number)
        self._activate(device, date_start="2022-04-01", contract=contract, duration_months=1)
        self.energy.minimum_amount = 3.0
        self._ingest([(device, "10", "2022-04-10T00:00:00Z")])
        april = self._bill(contract, "2022-04-30")
        self.assertEqual(april.amount_untaxed, 15.0 + 5.0)
        # The term is over, April is invoiced; then April readings arrive, and one after the term.
        self._ingest([(device, "4", "2022-04-20T00:00:00Z"), (device, "1", "2022-05-03T00:00:00Z")])
        late = self._bill(contract, "2022-05-31")
        # April re-rated with every reading: 14 x 0.50 = 7.00, of which 5.00 already billed.
        self.assertEqual(late.amount_untaxed, 2.0)
        self.assertIn("2022-04-01 to 2022-04-30", late.invoice_line_ids.name)
        schedule = late.iot_schedule_ids
        self.assertEqual((schedule.part, schedule.date_from, schedule.usage_amount), ("late", date(2022, 4, 1), 2.0))
        usage = self.env["iot.usage.bucket"].search([("device_id", "=", device.id)])
        states = {bucket.quantity_sum: (bucket.state, bucket.reject_reason) for bucket in usage}
        self.assertEqual(states[4.0], ("invoiced", False))
        self.assertEqual(states[1.0], ("rejected", "outside any active contract item"))
        self.assertFalse(self._bill(contract, "2022-06-30"), "nothing is billed twice")

    def test_an_event_posted_after_its_period_was_invoiced_is_billed_late(self):
        contract = self._contract()
        TestAccountingRules.number += 1
        device = self._pending_device("ACC-EVT-%d" % self.number)
        self._activate(device, date_start="2022-04-01", contract=contract)
        self.env["iot.usage.calculator"].create({
            "name": "Door openings", "contract_item_id": device.contract_item_ids.id, "source": "event",
            "event_type": "door_open", "aggregation": "count", "unit_price": 1.0})
        Device = self.env["iot_billing.device"].with_user(self.integration_user)

        def post(day, when, message_id):
            with freeze_time(when):
                result = Device.api_post_events([{"identifier": device.identifier, "event_type": "door_open",
                                                  "timestamp": day, "message_id": message_id}])
            self.assertEqual(result["accepted"], 1, result)

        post("2022-04-10T08:00:00Z", "2022-04-10", "e1")
        april = self._bill(contract, "2022-04-30")
        self.assertEqual(april.amount_untaxed, 15.0 + 1.0)
        post("2022-04-20T08:00:00Z", "2022-05-10", "e2")  # April's, posted in May
        post("2022-05-12T08:00:00Z", "2022-05-12", "e3")
        may = self._bill(contract, "2022-05-31")
        late = may.iot_schedule_ids.filtered(lambda schedule: schedule.part == "late")
        self.assertEqual((late.date_from, late.usage_amount), (date(2022, 4, 1), 1.0))
        self.assertEqual(may.amount_untaxed, 1.0 + 15.0 + 1.0, "April's late event, May's fee and event")
        self.assertFalse(self._bill(contract, "2022-06-01"), "nothing is billed twice")
