from datetime import date

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestTerminationCredit(IotContractCommon):
    """Terminating an item credits the fixed fees already invoiced for the days after its end."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.advance = cls.env["iot.contract"].create(
            {
                "name": "Advance",
                "reference": "ADV-1",
                "partner_id": cls.customer.id,
                "journal_id": cls.sale_journal.id,
                "fixed_fee_timing": "advance",
            }
        )
        cls.api = cls.Device.with_user(cls.integration_user)
        cls.api.api_register(
            [{"identifier": identifier, "partner": cls.customer.id} for identifier in ("CREDIT-ADV", "CREDIT-ARR")]
        )
        with freeze_time("2022-04-01"):
            result = cls.api.api_activate(
                [
                    {"identifier": "CREDIT-ADV", "contract": "ADV-1", "plan": "PREMIUM-FLEET"},
                    {"identifier": "CREDIT-ARR", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                ]
            )
        cls.advance_item, cls.arrears_item = (cls.Item.browse(entry["contract_item_id"]) for entry in result)

    def _schedule(self, item, month):
        # The fee's schedule (with fees in advance, the period's usage has one of its own).
        return item.schedule_ids.filtered(lambda s: s.date_from == date(2022, month, 1) and s.part != "usage")

    def _terminate(self, identifier, day):
        result = self.api.api_terminate([{"identifier": identifier, "date": day}])
        self.assertEqual(result[0].get("state"), "terminated", result)

    def _credit_notes(self, contract):
        return self.env["account.move"].search([("iot_contract_id", "=", contract.id)], order="id")

    @freeze_time("2022-04-10")
    def test_termination_on_the_10th_credits_the_unused_days_billed_in_advance(self):
        invoice = self.env["account.move"].browse(self._run_billing("2022-04-10")["invoice_ids"])
        self.assertEqual((invoice.name, invoice.amount_total), ("INV/2022/04/0001", 16.5))
        self._terminate("CREDIT-ADV", "2022-04-10")  # last day billed: the 10th

        refund = self._credit_notes(self.advance)
        self.assertEqual(len(refund), 1)
        self.assertEqual((refund.move_type, refund.state, refund.name), ("out_refund", "posted", "RINV/2022/04/0001"))
        self.assertEqual((refund.reversed_entry_id, refund.invoice_date), (invoice, date(2022, 4, 10)))
        self.assertEqual((refund.partner_id, refund.journal_id), (self.customer, self.sale_journal))
        # 20 unused days of 30: 15.00 - 15.00 x 10 / 30 = 10.00, plus 10 % tax.
        self.assertEqual((refund.amount_untaxed, refund.amount_tax, refund.amount_total), (10.0, 1.0, 11.0))
        line = refund.invoice_line_ids
        self.assertEqual(
            (line.product_id, line.tax_ids, line.quantity, line.price_unit), (self.plan, self.tax_10, 1, 10)
        )
        self.assertEqual((line.iot_period_from, line.iot_period_to), (date(2022, 4, 11), date(2022, 4, 30)))
        self.assertTrue(line.name.endswith(", not used"), line.name)
        april = self._schedule(self.advance_item, 4)
        self.assertEqual((april.state, april.fixed_amount, april.credit_line_id), ("invoiced", 15.0, line))
        self.assertEqual(self._schedule(self.advance_item, 5).state, "cancelled")
        self.assertEqual(self.advance.invoice_count, 2)
        self.assertEqual(invoice.payment_state, "partial")

        # Odoo's own credit note of the same line and price reaches the same amounts.
        manual = self.env["account.move"].browse(
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "date": "2022-04-10"})
            .refund_moves()["res_id"]
        )
        manual.invoice_line_ids.price_unit = 10.0
        self.assertEqual(
            (manual.amount_untaxed, manual.amount_tax, manual.amount_total),
            (refund.amount_untaxed, refund.amount_tax, refund.amount_total),
        )
        manual.unlink()

        # Nothing is credited twice.
        self.advance_item._iot_credit_unused_fees()
        self.assertEqual(self._credit_notes(self.advance), refund)

    @freeze_time("2022-06-02")
    def test_termination_dated_back_credits_each_invoiced_period(self):
        result = self._run_billing("2022-05-31")
        invoices = (
            self.env["account.move"]
            .browse(result["invoice_ids"])
            .filtered(lambda move: move.invoice_origin == "IOT-FLEET-001")
        )
        april_invoice, may_invoice = invoices.sorted("invoice_date")
        self._terminate("CREDIT-ARR", "2022-04-10")
        refunds = self._credit_notes(self.contract)
        self.assertEqual(refunds.mapped("name"), ["RINV/2022/06/0001", "RINV/2022/06/0002"])
        self.assertEqual(refunds.reversed_entry_id, april_invoice | may_invoice)
        by_invoice = {refund.reversed_entry_id: refund.amount_untaxed for refund in refunds}
        self.assertEqual((by_invoice[april_invoice], by_invoice[may_invoice]), (10.0, 15.0))
        # May is credited in full: its period is freed, then cancelled as after the end.
        self.assertEqual(may_invoice.payment_state, "reversed")
        self.assertEqual(self._schedule(self.arrears_item, 5).state, "cancelled")
        self.assertEqual(self._schedule(self.arrears_item, 4).state, "invoiced")
        again = self.env["account.move"].browse(self._run_billing("2022-06-02")["invoice_ids"])
        self.assertFalse(again.filtered(lambda move: move.invoice_origin == "IOT-FLEET-001"), "nothing billed again")

    @freeze_time("2022-04-10")
    def test_cancelling_a_credited_invoice_needs_its_credit_cancelled_first(self):
        invoice = self.env["account.move"].browse(self._run_billing("2022-04-10")["invoice_ids"])
        self._terminate("CREDIT-ADV", "2022-04-10")
        refund = self._credit_notes(self.advance)
        with self.assertRaisesRegex(UserError, "cancel it first"):
            invoice.button_cancel()
        refund.button_cancel()
        april = self._schedule(self.advance_item, 4)
        self.assertFalse(april.credit_line_id)
        invoice.button_cancel()
        # Freed and re-planned on the item's dates: 1-10 April, 5.00.
        self.assertEqual((april.state, april.date_to, april.fixed_amount), ("planned", date(2022, 4, 10), 5.0))
        again = self.env["account.move"].browse(self._run_billing("2022-04-10")["invoice_ids"])
        self.assertEqual(again.amount_untaxed, 5.0)
