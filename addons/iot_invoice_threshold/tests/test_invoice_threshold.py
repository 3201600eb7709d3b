from datetime import date

from freezegun import freeze_time

from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import tagged
from odoo.tools.misc import format_date


@tagged("post_install", "-at_install")
class TestInvoiceThreshold(IotContractCommon):
    """The transaction account: periods below the contract's invoicing level are held and
    invoiced with later ones (15.00 a month, 10 % tax, fees in arrears unless said)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract.write({"invoice_threshold_source": "contract", "invoice_threshold": 40.0})
        cls.api = cls.Device.with_user(cls.integration_user)

    def setUp(self):
        super().setUp()
        with freeze_time("2026-01-01"):
            self.item = self._activate(self._pending_device("HOLD-1"), date_start="2026-01-01")

    def _run(self, day):
        with freeze_time(day):
            return self.env["account.move"].browse(self._run_billing(day)["invoice_ids"])

    def _month(self, month):
        return self.item.schedule_ids.filtered(lambda s: s.date_from == date(2026, month, 1) and s.state != "cancelled")

    def _labels(self, invoice):
        return [line.name.rsplit(" — ", 1)[-1] for line in invoice.invoice_line_ids.sorted("iot_period_from")]

    def test_below_the_level_periods_are_held_then_invoiced_together_each_with_its_label(self):
        with freeze_time("2026-01-31"):
            status = self._run_billing("2026-01-31")
        self.assertEqual((status["invoice_ids"], status["schedules_done"], status["schedules_held"]), ([], 1, 1))
        january = self._month(1)
        self.assertEqual((january.state, january.iot_hold_from, january.invoice_date),
                         ("planned", date(2026, 1, 31), date(2026, 2, 28)))
        self.assertEqual((self.contract.held_amount, self.contract.held_since), (15.0, date(2026, 1, 31)))
        self.assertFalse(self._run("2026-02-28"))  # 30.00 < 40.00
        self.assertEqual((self.contract.held_amount, self.contract.held_schedule_count), (30.0, 2))
        invoice = self._run("2026-03-31")  # 45.00 >= 40.00
        self.assertEqual(len(invoice), 1)
        self.assertEqual((invoice.invoice_date, invoice.amount_untaxed, invoice.amount_total),
                         (date(2026, 3, 31), 45.0, 49.5))
        self.assertEqual(self._labels(invoice), ["January 2026", "February 2026", "March 2026"])
        self.assertEqual(set((self._month(1) | self._month(2) | self._month(3)).mapped("state")), {"invoiced"})
        self.assertEqual((self.contract.held_amount, self.contract.held_since), (0.0, False))
        self.assertEqual(self._month(1).iot_hold_from, date(2026, 1, 31))  # the history stays

    def test_exactly_at_the_level_invoices(self):
        self.contract.invoice_threshold = 30.0
        self.assertFalse(self._run("2026-01-31"))
        invoice = self._run("2026-02-28")
        self.assertEqual((invoice.amount_untaxed, self._labels(invoice)), (30.0, ["January 2026", "February 2026"]))

    def test_above_the_level_each_period_is_invoiced_alone(self):
        self.contract.invoice_threshold = 10.0
        self.assertEqual(self._run("2026-01-31").amount_untaxed, 15.0)
        self.assertEqual(self._run("2026-02-28").amount_untaxed, 15.0)
        self.assertFalse(self._month(1).iot_hold_from)

    def test_longest_hold_reached_invoices_whatever_the_amount(self):
        self.contract.write({"invoice_threshold": 1000.0, "invoice_hold_months": 2})
        self.assertFalse(self._run("2026-01-31"))
        self.assertFalse(self._run("2026-02-28"))
        self.assertEqual(self._month(1).invoice_date, date(2026, 3, 31))  # held at most 2 months
        invoice = self._run("2026-03-31")
        self.assertEqual((invoice.amount_untaxed, len(invoice.invoice_line_ids)), (45.0, 3))
        self.assertFalse(self._run("2026-04-30"))  # April starts a hold of its own
        self.assertEqual(self._month(4).iot_hold_from, date(2026, 4, 30))

    def test_termination_invoices_the_held_periods_with_the_last_one(self):
        self.contract.invoice_threshold = 1000.0
        self.assertFalse(self._run("2026-01-31"))
        self.assertFalse(self._run("2026-02-28"))
        with freeze_time("2026-03-11"):
            self.api.api_terminate([{"identifier": "HOLD-1", "date": "2026-03-10"}])
        self.assertFalse(self._run("2026-03-11"))  # the last period is not over yet
        invoice = self._run("2026-03-31")
        # March prorated: 15 x 10 / 31 = 4.84; no later period: the contract's end invoices all.
        self.assertEqual((invoice.amount_untaxed, self._labels(invoice)[0]), (34.84, "January 2026"))
        self.assertFalse(self._month(4))  # April's schedule is cancelled
        self.assertEqual(self.contract.held_amount, 0.0)

    def test_a_credit_note_of_a_later_period_is_never_held(self):
        advance = self.env["iot.contract"].create({
            "name": "Advance", "reference": "HOLD-ADV", "partner_id": self.customer.id,
            "journal_id": self.sale_journal.id, "fixed_fee_timing": "advance",
            "invoice_threshold_source": "contract", "invoice_threshold": 25.0})
        device = self._pending_device("HOLD-ADV-1")
        with freeze_time("2026-01-01"):
            item = self._activate(device, date_start="2026-01-01", contract=advance)
        self.assertFalse(self._run("2026-01-01"))  # January's fee, 15.00, held
        self.assertFalse(self._run("2026-01-31"))
        invoice = self._run("2026-02-01")  # with February's: 30.00
        self.assertEqual((invoice.amount_untaxed, invoice.state), (30.0, "posted"))
        with freeze_time("2026-02-14"):
            self.api.api_terminate([{"identifier": "HOLD-ADV-1", "date": "2026-02-14"}])
        # 14 of February's 28 days are given back at once, though 7.50 is below the level.
        refund = self.env["account.move"].search([("iot_contract_id", "=", advance.id)])
        self.assertEqual((refund.move_type, refund.state, refund.amount_untaxed), ("out_refund", "posted", 7.5))
        self.assertEqual(refund.reversed_entry_id, invoice)
        self.assertIn(format_date(self.env, date(2026, 2, 15)), refund.invoice_line_ids.name)
        self.assertFalse(item.schedule_ids.filtered(lambda s: s.state == "planned" and s.iot_hold_from))

    def test_the_level_defaults_to_the_plans_then_the_companys(self):
        contract = self.env["iot.contract"].create({
            "name": "Defaults", "reference": "HOLD-DEF", "partner_id": self.customer.id,
            "journal_id": self.sale_journal.id})
        self.company.write({"iot_invoice_threshold": 20.0, "iot_invoice_hold_months": 6})
        device = self._pending_device("HOLD-DEF-1")
        with freeze_time("2026-01-01"):
            self._activate(device, date_start="2026-01-01", contract=contract)
        self.assertEqual((contract.invoice_level, contract.invoice_level_hold_months), (20.0, 6))
        self.assertFalse(self._run("2026-01-31").filtered(lambda move: move.partner_id == contract.partner_id
                                                           and move.invoice_origin == "HOLD-DEF"))
        self.assertEqual(contract.held_amount, 15.0)
        self.plan.product_tmpl_id.write({"iot_invoice_threshold": 50.0, "iot_invoice_hold_months": 3})
        contract.invalidate_recordset(["invoice_level", "invoice_level_hold_months"])
        self.assertEqual((contract.invoice_level, contract.invoice_level_hold_months), (50.0, 3))
        invoices = self._run("2026-02-28").filtered(lambda move: move.invoice_origin == "HOLD-DEF")
        self.assertFalse(invoices)  # 30.00 < 50.00, the plan's level
        self.assertEqual(contract.held_amount, 30.0)
