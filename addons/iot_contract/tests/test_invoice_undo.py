from datetime import date

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestInvoiceUndo(IotContractCommon):
    """Cancelling, deleting or fully crediting an IoT invoice returns its periods to the schedule."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # An accountant with no IoT group: undoing an invoice must not need IoT rights.
        cls.accountant = new_test_user(cls.env, login="iot_accountant", groups="account.group_account_invoice")
        with freeze_time("2022-04-01"):
            cls.Device.with_user(cls.integration_user).api_register(
                [{"identifier": "UNDO-1", "name": "IOT_UNDO", "partner": cls.customer.id}]
            )
            result = cls.Device.with_user(cls.integration_user).api_activate(
                [
                    {
                        "identifier": "UNDO-1",
                        "contract": "IOT-FLEET-001",
                        "plan": "PREMIUM-FLEET",
                        "date_start": "2022-04-01",
                    }
                ]
            )
        cls.item = cls.Item.browse(result[0]["contract_item_id"])

    def _april(self):
        return self.item.schedule_ids.filtered(lambda s: s.date_from == date(2022, 4, 1))

    def _bill_april(self):
        result = self._run_billing("2022-04-30")
        self.assertEqual(result["errors"], [])
        return self.env["account.move"].browse(result["invoice_ids"])

    def _assert_freed(self, schedule):
        self.assertEqual(schedule.state, "planned")
        self.assertFalse(schedule.invoice_id)
        self.assertFalse(schedule.fixed_line_id)
        self.assertFalse(schedule.invoice_line_ids)

    def _credit_note(self, invoice, price_unit):
        wizard = (
            self.env["account.move.reversal"]
            .with_user(self.accountant)
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "date": "2022-04-30", "reason": "test"})
        )
        action = wizard.refund_moves()
        credit_note = self.env["account.move"].browse(action["res_id"]).with_user(self.accountant)
        credit_note.invoice_line_ids.price_unit = price_unit
        credit_note.action_post()
        return credit_note

    @freeze_time("2022-04-30")
    def test_cancelled_invoice_frees_its_period_and_the_next_run_bills_it(self):
        invoice = self._bill_april()
        self.assertEqual(self._april().invoice_id, invoice)
        invoice.with_user(self.accountant).button_cancel()
        self.assertEqual(invoice.state, "cancel")
        self._assert_freed(self._april())
        again = self._bill_april()
        self.assertEqual(again.name, "INV/2022/04/0002")
        self.assertEqual(again.amount_total, 16.5)
        self.assertEqual((self._april().state, self._april().invoice_id), ("invoiced", again))
        self.assertEqual(self._april().fixed_line_id, again.invoice_line_ids)
        # The cancelled invoice cannot be posted again: April would be billed twice.
        invoice.with_user(self.accountant).button_draft()
        with self.assertRaisesRegex(UserError, "bill them twice"):
            invoice.with_user(self.accountant).action_post()

    @freeze_time("2022-04-30")
    def test_reset_to_draft_keeps_the_period_deleting_the_draft_frees_it(self):
        invoice = self._bill_april()
        invoice.with_user(self.accountant).button_draft()
        # A draft still bills its periods: the run does not bill them a second time.
        self.assertEqual((self._april().state, self._april().invoice_id), ("invoiced", invoice))
        self.assertEqual(self._run_billing("2022-04-30")["invoice_ids"], [])
        invoice.with_user(self.accountant).unlink()
        self._assert_freed(self._april())
        again = self._bill_april()
        self.assertEqual((again.state, again.amount_total), ("posted", 16.5))
        self.assertEqual(self._april().invoice_id, again)

    @freeze_time("2022-04-30")
    def test_draft_of_a_contract_without_posting_can_be_deleted(self):
        self.contract.auto_post = False
        draft = self._bill_april()
        self.assertEqual(draft.state, "draft")
        draft.with_user(self.accountant).unlink()
        self.assertFalse(draft.exists())
        self._assert_freed(self._april())

    @freeze_time("2022-04-30")
    def test_full_credit_note_frees_the_period_a_partial_one_does_not(self):
        invoice = self._bill_april()
        partial = self._credit_note(invoice, 5.0)
        self.assertEqual(partial.name, "RINV/2022/04/0001")
        self.assertEqual(partial.amount_total, 5.5)
        self.assertEqual((self._april().state, self._april().invoice_id), ("invoiced", invoice))
        # The rest of the invoice: together the credit notes reach its total.
        rest = self._credit_note(invoice, 10.0)
        self.assertEqual(partial.amount_total + rest.amount_total, invoice.amount_total)
        self._assert_freed(self._april())
        with self.assertRaisesRegex(UserError, "cancelled an IoT invoice in full"):
            rest.button_draft()
        again = self._bill_april()
        self.assertEqual((again.amount_total, self._april().invoice_id), (16.5, again))

    @freeze_time("2022-05-02")
    def test_freed_period_after_a_termination_is_billed_prorated(self):
        self.contract.auto_post = False
        draft = self._bill_april()
        # Terminated on 10 April while April's invoice is a draft (a draft is not credited), then
        # the draft is deleted: the freed period is re-planned on the item's dates (10 of 30 days).
        self.item._iot_terminate(date(2022, 4, 10))
        self.assertFalse(self.env["account.move"].search([("iot_contract_id", "=", self.contract.id)]))
        draft.unlink()
        april = self._april()
        self.assertEqual((april.state, april.date_to, april.fixed_amount), ("planned", date(2022, 4, 10), 5.0))
        again = self._bill_april()
        self.assertEqual(again.amount_untaxed, 5.0)
