from decimal import Decimal

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import RevenueShareCommon


@tagged("post_install", "-at_install")
class TestSmartCity(RevenueShareCommon):
    """70/30: the streetlight vendor, owner of the lamps, receives 30 % of what they bill."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lamps = cls._fleet(40, owner=cls.vendor)

    def setUp(self):
        super().setUp()
        self.rule = self._percent_rule(30)

    def test_vendor_bill_is_30_percent_of_the_month_to_the_cent(self):
        invoice = self._bill("2022-04-30")
        self.assertEqual(len(invoice), 1)
        self.assertEqual(len(invoice.invoice_line_ids), 2, "grouped: one fixed-fee line, one usage line")
        # 40 lamps x 3.00 + energy of ~4,700 kWh each at 0.00005: not a round number of cents
        self.assertGreater(invoice.amount_untaxed, 120.0)
        settlement = self._settle("2022-04")
        self.assertEqual(len(settlement), 1)
        self.assertEqual(settlement.partner_id, self.vendor)
        bill = settlement.move_id
        self.assertEqual((bill.move_type, bill.state, settlement.state), ("in_invoice", "posted", "posted"))
        expected = self._percent_of(invoice.amount_untaxed, 30)
        self.assertEqual(bill.amount_untaxed, expected)
        self.assertEqual(settlement.amount_total, expected)
        self.assertEqual(bill.journal_id.code, "RSHR")
        self.assertEqual(bill.journal_id.type, "purchase")
        self.assertEqual(bill.invoice_payment_term_id, self.vendor.property_supplier_payment_term_id)
        self.assertIn("2022-04", bill.ref)
        self.assertEqual(str(bill.invoice_date), "2022-04-30")
        # a few lines per rule and kind, the detail per device adds up to the bill
        self.assertEqual(sorted(bill.invoice_line_ids.mapped("name")), [
            "Share 30 % — Fixed fees — 2022-04", "Share 30 % — Usage — 2022-04"])
        total, rows, totals_row = self._detail_total(settlement)
        self.assertEqual(rows, 80, "40 lamps x (fixed fee, usage)")
        self.assertEqual(total, Decimal(repr(expected)).quantize(Decimal("0.01")))
        self.assertEqual(Decimal(totals_row[10]), total)
        self.assertEqual(Decimal(totals_row[8]), Decimal(repr(invoice.amount_untaxed)).quantize(Decimal("0.01")))
        self.assertEqual(settlement.detail_attachment_id.res_id, bill.id)
        self.assertTrue(settlement.detail_attachment_id.name.endswith(".csv"))
        # the invoice's IoT tab shows what it gave away
        self.assertEqual(invoice.iot_revenue_share_amount, expected)
        # settled once: a second run finds nothing
        self.assertFalse(self._settle("2022-04"))
        self.assertEqual(self.env["iot.revenue.share.line"].search_count([("invoice_id", "=", invoice.id)]), 80)

    def test_bill_taxes_are_odoos_own(self):
        purchase_tax = self.env["account.tax"].create(
            {"name": "Purchase VAT 20%", "amount": 20.0, "type_tax_use": "purchase"}
        )
        self.rule.product_id.supplier_taxes_id = purchase_tax
        self._bill("2022-04-30")
        settlement = self._settle("2022-04")
        manual = self._manual_bill(settlement)
        self.assertEqual(settlement.move_id.invoice_line_ids.tax_ids, purchase_tax)
        self.assertEqual(
            (settlement.move_id.amount_untaxed, settlement.move_id.amount_tax, settlement.move_id.amount_total),
            (manual.amount_untaxed, manual.amount_tax, manual.amount_total),
        )

    def test_credit_note_reduces_the_next_settlement(self):
        april = self._bill("2022-04-30")
        april_share = self._settle("2022-04").amount_total
        refund = self._credit_note(april, "2022-05-10")
        may = self._bill("2022-05-31")
        settlement = self._settle("2022-05")
        self.assertEqual(len(settlement), 1)
        # May's share net of April's credit note, rounded once
        # the credit note in full freed April's periods (iot_contract): May's run bills them again
        self.assertEqual(len(may.iot_schedule_ids), 80)
        expected = self._percent_of(sum(may.mapped("amount_untaxed")) - refund.amount_untaxed, 30)
        self.assertEqual(settlement.amount_total, expected)
        self.assertEqual(settlement.move_id.move_type, "in_invoice" if expected > 0 else "in_refund")
        self.assertEqual(settlement.move_id.amount_untaxed, abs(expected))
        refund_lines = self.env["iot.revenue.share.line"].search([("invoice_id", "=", refund.id)])
        self.assertEqual(len(refund_lines), 80)
        self.assertEqual(round(sum(refund_lines.mapped("base_amount")), 2), -april.amount_untaxed)
        self.assertLess(sum(refund_lines.mapped("share_amount")), -april_share + 0.02)
        self.assertFalse(self._settle("2022-05"), "the credit note counts once")

    def test_credit_note_alone_makes_a_vendor_credit_note(self):
        april = self._bill("2022-04-30")
        april_share = self._settle("2022-04").amount_total
        self._credit_note(april, "2022-05-10")
        settlement = self._settle("2022-05")
        self.assertEqual(settlement.move_id.move_type, "in_refund")
        self.assertEqual(settlement.move_id.amount_untaxed, april_share)
        self.assertEqual(settlement.amount_total, -april_share)

    def test_partial_credit_note_is_shared_in_proportion(self):
        april = self._bill("2022-04-30")
        self._settle("2022-04")
        refund = april._reverse_moves([{"date": fields.Date.to_date("2022-05-03"), "invoice_date": "2022-05-03"}])
        refund.invoice_line_ids[0].price_unit = refund.invoice_line_ids[0].price_unit / 2
        refund.action_post()
        settlement = self._settle("2022-05")
        self.assertEqual(settlement.amount_total, -self._percent_of(refund.amount_untaxed, 30))

    def test_invoice_credited_in_full_before_settlement_is_shared_when_billed_again(self):
        april = self._bill("2022-04-30")
        self._credit_note(april, "2022-04-30")
        # iot_contract frees the periods of an invoice credited in full: nothing to share
        self.assertFalse(self._settle("2022-04"))
        rebilled = self._bill("2022-05-31")
        self.assertEqual(len(rebilled.iot_schedule_ids), 80, "April's periods again, and May's")
        settlement = self._settle("2022-05")
        self.assertEqual(settlement.amount_total, self._percent_of(sum(rebilled.mapped("amount_untaxed")), 30))
        self.assertEqual(settlement.line_ids.invoice_id, rebilled)

    def test_shared_invoice_cannot_go_back_to_draft(self):
        april = self._bill("2022-04-30")
        self._settle("2022-04")
        with self.assertRaises(UserError):
            april.button_draft()

    def test_commission_journal_entry(self):
        invoice = self._bill("2022-04-30")
        settlement = self._settle("2022-04", mode="entry")
        entry = settlement.move_id
        expected = self._percent_of(invoice.amount_untaxed, 30)
        self.assertEqual((entry.move_type, entry.state), ("entry", "posted"))
        payable = entry.line_ids.filtered(lambda line: line.account_id.account_type == "liability_payable")
        self.assertEqual((payable.partner_id, payable.credit), (self.vendor, expected))
        self.assertEqual(sum(entry.line_ids.mapped("debit")), expected)

    def test_api_answers_per_settlement(self):
        invoice = self._bill("2022-04-30")
        settlement = self._settle("2022-04")
        api = self.Settlement.with_user(self.billing_user)
        [answer] = api.api_settlements("2022-04", "LUMEN")
        self.assertEqual(answer["beneficiary"]["id"], self.vendor.id)
        self.assertEqual((answer["bill_id"], answer["state"]), (settlement.move_id.id, "posted"))
        by_kind = {row["kind"]: row for row in answer["amounts"]}
        self.assertEqual(set(by_kind), {"fixed", "usage"})
        self.assertEqual(by_kind["fixed"]["base"], 120.0)
        self.assertAlmostEqual(by_kind["fixed"]["share"] + by_kind["usage"]["share"], answer["amount_total"], 2)
        self.assertEqual(answer["amount_total"], self._percent_of(invoice.amount_untaxed, 30))
        self.assertEqual(api.api_settlements("2022-04", self.installer.id), [])
        self.assertEqual(api.api_settlements("2022-03"), [])
        detail, missing = api.api_settlement_detail([settlement.id, 999999], "csv")
        self.assertTrue(detail["filename"].endswith(".csv"))
        self.assertIn("error", missing)
        self._pay(settlement.move_id, "2022-05-15")
        self.assertEqual(api.api_settlements("2022-04")[0]["state"], "paid")

    def test_statement_report(self):
        self._bill("2022-04-30")
        settlement = self._settle("2022-04")
        html = self.env["ir.actions.report"]._render_qweb_html(
            "iot_revenue_share.report_statement", settlement.ids
        )[0].decode()
        self.assertIn("LumenWorks", html)
        self.assertIn("Usage", html)
        self.assertIn(settlement.move_id.name, html)
        filename, mimetype, content = settlement._iot_detail_file("xlsx")
        self.assertTrue(filename.endswith(".xlsx") and "spreadsheetml" in mimetype)
        self.assertEqual(content[:2], b"PK")
