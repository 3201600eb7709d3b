from unittest.mock import patch

from odoo import Command
from odoo.tests import tagged

from .common import IotDunningCommon


@tagged("post_install", "-at_install")
class TestDunningPayment(IotDunningCommon):
    def setUp(self):
        super().setUp()
        self.light_2.action_suspend()  # by hand: payment must not resume it
        self._evaluate("2022-06-10")
        self.assertEqual(self.light_1.iot_suspension_reason, "unpaid")

    def test_payment_releases_the_devices_in_the_same_transaction(self):
        self._pay(self.invoice, 49.5, "2022-06-12")
        self.assertIn(self.invoice.payment_state, ("in_payment", "paid"))
        self.assertEqual((self.light_1.state, self.light_1.iot_suspension_reason), ("active", False))
        self.assertEqual(self.light_1.current_item_id.state, "running")
        self.assertEqual(len(self._commands(self.light_1, "unblock")), 1)
        self.assertEqual(
            self.env["iot_billing.device.event"].search_count(
                [("device_id", "=", self.light_1.id), ("event_type", "=", "resumed")]
            ),
            1,
        )
        # Suspended by hand: stays suspended, receives nothing.
        self.assertEqual((self.light_2.state, self.light_2.iot_suspension_reason), ("suspended", "manual"))
        self.assertFalse(self._commands(self.light_2, "unblock"))
        self.assertFalse(self._commands(self.emergency, "block") | self._commands(self.emergency, "unblock"))
        self.assertFalse(self.contract.iot_dunning_blocked_since)
        self.assertFalse(self.contract.iot_dunning_level_id)
        # The next evaluation neither blocks again nor sends anything.
        lines = len(self.contract.iot_dunning_line_ids)
        self._evaluate("2022-06-13")
        self.assertEqual(self.light_1.state, "active")
        self.assertEqual(len(self.contract.iot_dunning_line_ids), lines)

    def test_in_payment_counts_as_paid_payment_without_journal_entry(self):
        # With Odoo Accounting (enterprise) installed, a payment whose method has no
        # outstanding account posts no journal entry: the invoice is 'in_payment' by the
        # link to the payment alone, with no reconciliation. Simulated by its hook.
        journal = self.env["account.journal"].search(
            [("company_id", "=", self.company.id), ("type", "=", "bank")], limit=1
        )
        method_line = journal.inbound_payment_method_line_ids[:1]
        method_line.payment_account_id = False
        AccountMove = type(self.env["account.move"])
        with patch.object(AccountMove, "_get_invoice_in_payment_state", lambda move: "in_payment"):
            payments = self._pay(
                self.invoice, 49.5, "2022-06-12", journal_id=journal.id, payment_method_line_id=method_line.id
            )
            self.assertFalse(payments.move_id)
            self.assertFalse(self.invoice.line_ids.matched_credit_ids)
            self.assertEqual(self.invoice.payment_state, "in_payment")
        self.assertEqual(self.light_1.state, "active")
        self.assertEqual(len(self._commands(self.light_1, "unblock")), 1)

    def test_partial_payment_releases_below_the_minimum_only(self):
        self.policy.minimum_amount = 20.0
        self._pay(self.invoice, 20.0, "2022-06-12")
        self.assertEqual(self.invoice.payment_state, "partial")
        self.assertEqual(self.light_1.state, "suspended", "29.50 still overdue, above the minimum")
        self.assertFalse(self._commands(self.light_1, "unblock"))
        self._pay(self.invoice, 10.0, "2022-06-13")
        self.assertEqual(self.invoice.amount_residual, 19.5)
        self.assertEqual(self.light_1.state, "active", "19.50 overdue, below the minimum of 20.00")
        self.assertEqual(len(self._commands(self.light_1, "unblock")), 1)

    def test_manual_matching_of_a_journal_entry_releases(self):
        receivable = self.invoice.line_ids.filtered(lambda line: line.account_id.account_type == "asset_receivable")
        bank = self.env["account.journal"].search(
            [("company_id", "=", self.company.id), ("type", "=", "bank")], limit=1
        )
        entry = self.env["account.move"].create(
            {
                "move_type": "entry",
                "date": "2022-06-12",
                "journal_id": bank.id,
                "line_ids": [
                    Command.create({"account_id": bank.default_account_id.id, "debit": 49.5}),
                    Command.create(
                        {"account_id": receivable.account_id.id, "partner_id": self.customer.id, "credit": 49.5}
                    ),
                ],
            }
        )
        entry.action_post()
        self.assertEqual(self.light_1.state, "suspended")
        (receivable | entry.line_ids.filtered(lambda line: line.account_id == receivable.account_id)).reconcile()
        self.assertEqual(self.invoice.payment_state, "paid")
        self.assertEqual(self.light_1.state, "active")

    def test_undone_payment_blocks_again_at_the_next_evaluation_without_email(self):
        self._pay(self.invoice, 49.5, "2022-06-12")
        self.assertEqual(self.light_1.state, "active")
        mails = self._chatter().filtered(lambda message: message.message_type == "comment")
        self.invoice.line_ids.remove_move_reconcile()
        self.assertEqual(self.invoice.payment_state, "not_paid")
        self.assertEqual(self.light_1.state, "active", "nothing happens before the next evaluation")
        self._evaluate("2022-06-13")
        self.assertEqual((self.light_1.state, self.light_1.iot_suspension_reason), ("suspended", "unpaid"))
        self.assertEqual(self._chatter().filtered(lambda message: message.message_type == "comment"), mails)
        self.assertEqual(len(self._commands(self.light_1, "block")), 2)

    def test_paying_another_invoice_releases_nothing(self):
        other = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.customer.id,
                "invoice_date": "2022-06-01",
                "invoice_line_ids": [(0, 0, {"product_id": self.fee_product.id, "quantity": 1})],
            }
        )
        other.action_post()
        self._pay(other, other.amount_total, "2022-06-12")
        self.assertIn(other.payment_state, ("in_payment", "paid"))
        self.assertEqual(self.light_1.state, "suspended")

    def test_accountant_without_iot_rights_registers_the_payment(self):
        accountant = self.env["res.users"].create(
            {
                "name": "Accountant",
                "login": "dunning_accountant",
                "groups_id": [(6, 0, [self.env.ref("account.group_account_invoice").id])],
            }
        )
        self.assertFalse(accountant.has_group("iot_device.group_iot_user"))
        self.env = self.env(user=accountant)
        self._pay(self.invoice.with_user(accountant), 49.5, "2022-06-12")
        self.assertEqual(self.light_1.sudo().state, "active")
