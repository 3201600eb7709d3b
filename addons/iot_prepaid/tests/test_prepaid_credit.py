from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import IotPrepaidCommon


@tagged("post_install", "-at_install")
class TestPrepaidCredit(IotPrepaidCommon):
    """Top-ups, low-credit notices, blocking at zero and unblocking when a top-up is paid."""

    def _pay(self, invoice):
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids,
        ).create({})._create_payments()

    def _commands(self, command):
        return self.env["iot_billing.device.command"].search(
            [("device_id", "in", (self.device_1 | self.device_2).ids), ("command", "=", command)])

    def test_top_up_invoice_is_a_customer_advance_and_credits_once_paid(self):
        invoice = self.wallet.with_user(self.billing_user)._create_topup(20.0)
        self.assertEqual(invoice.state, "posted")
        grant = self.Grant.search([("move_id", "=", invoice.id)])
        self.assertEqual((grant.kind, grant.state, self.wallet.balance), ("topup", "waiting", 0.0))
        line = invoice.invoice_line_ids
        self.assertEqual(line.product_id, self.env.ref("iot_prepaid.product_prepaid_credit"))
        self.assertEqual(line.account_id.account_type, "liability_current", "booked as a customer advance")
        self.assertEqual(invoice.amount_untaxed, 20.0)
        self._pay(invoice)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual((grant.state, grant.remaining, self.wallet.balance), ("active", 20.0, 20.0))
        self.assertEqual(self.wallet.last_topup_amount, 20.0)
        self.assertLedgerConsistent()

    def test_credit_on_posting_when_the_wallet_does_not_wait_for_payment(self):
        self.wallet.credit_after_payment = False
        self.wallet._create_topup(15.0)
        self.assertEqual(self.wallet.balance, 15.0)

    def test_low_balance_then_block_at_zero_then_unblock_on_paid_top_up(self):
        self.wallet.write({"low_balance_amount": 5.0})
        self._grant(10.0)
        self._ingest([self._reading(quantity="12", timestamp="2022-04-14T09:00:00Z")])  # 6.00: 4.00 left
        self.assertTrue(self.wallet.low_balance_notified)
        self.assertFalse(self.wallet.blocked_no_credit)
        mail = self.env["mail.mail"].search([("model", "=", "iot.wallet"), ("res_id", "=", self.wallet.id)])
        self.assertEqual(len(mail), 1)
        self.assertIn(self.customer, mail.recipient_ids)
        self.assertIn("4.00", mail.body_html)
        events = self.env["iot_billing.device.event"].search(
            [("device_id", "in", (self.device_1 | self.device_2).ids), ("event_type", "=", "low_balance")])
        self.assertEqual(events.device_id, self.device_1 | self.device_2)
        self.assertEqual(len(self._commands("low_balance")), 2)
        # Notified once per fall, not at every batch.
        self._ingest([self._reading(quantity="1", timestamp="2022-04-14T10:00:00Z")])
        self.assertEqual(len(self._commands("low_balance")), 2)
        # 4.00 - 0.50 - 4.00 = -0.50: nothing left, the prepaid devices are blocked.
        self._ingest([self._reading(quantity="8", timestamp="2022-04-15T09:00:00Z")])
        self.assertEqual(self.wallet.available, -0.5)
        self.assertTrue(self.wallet.blocked_no_credit)
        devices = self.device_1 | self.device_2
        self.assertEqual(set(devices.mapped("state")), {"suspended"})
        self.assertTrue(all(devices.mapped("iot_no_credit")))
        self.assertEqual(len(self._commands("block")), 2)
        with self.assertRaises(UserError):
            self.device_1.action_resume()  # only credit releases them
        # Platforms read the credit and the reason with the device, over RPC.
        read = self.Device.with_user(self.integration_user).search_read(
            [("identifier", "=", "U-1")], ["state", "iot_no_credit", "iot_credit_available"])
        self.assertEqual([(row["state"], row["iot_no_credit"], row["iot_credit_available"]) for row in read],
                         [("suspended", True, -0.5)])
        # A top-up: nothing until paid, then unblocked in the payment's transaction.
        invoice = self.wallet._create_topup(30.0)
        self.assertTrue(self.wallet.blocked_no_credit)
        self._pay(invoice)
        self.assertFalse(self.wallet.blocked_no_credit)
        self.assertFalse(self.wallet.low_balance_notified)
        self.assertEqual(set(devices.mapped("state")), {"active"})
        self.assertFalse(any(devices.mapped("iot_no_credit")))
        self.assertEqual(len(self._commands("unblock")), 2)
        # 30.00 less the 0.50 no grant covered (the top-up pays it).
        self.assertEqual(self.wallet.balance, 29.5)
        self.assertLedgerConsistent()

    def test_usage_beyond_the_credit_is_billed_and_leaves_the_ledger(self):
        self._grant(2.0)
        self._ingest([self._reading(quantity="10", timestamp="2022-04-14T09:00:00Z")])  # 5.00, 3.00 uncovered
        result = self._run("2022-04-30")
        self.assertFalse(result["errors"])
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        credit = invoice.invoice_line_ids.filtered(lambda line: line.price_subtotal < 0)
        self.assertEqual(credit.price_subtotal, -2.0, "only what the credit paid is deducted")
        self.assertEqual(self.april_1.iot_credit_line_id, credit)
        # 2 fees of 10.00 + 5.00 usage - 2.00 credit
        self.assertEqual(invoice.amount_untaxed, 23.0)
        self.assertEqual(self.wallet.balance, 0.0, "the 3.00 billed on the invoice is no longer owed to the ledger")
        self.assertLedgerConsistent()
