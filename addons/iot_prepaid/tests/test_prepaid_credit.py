from datetime import date
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import freeze_time, tagged

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

    def _block_for_no_credit(self):
        """U-1 and U-2 blocked for no credit (1.00 of credit, 2.00 of usage)."""
        self._grant(1.0)
        self._ingest([self._reading(quantity="4", timestamp="2022-04-14T09:00:00Z")])
        devices = self.device_1 | self.device_2
        self.assertEqual(set(devices.mapped("state")), {"suspended"})
        self.assertTrue(all(devices.mapped("iot_no_credit")))

    def test_platform_resume_refuses_devices_blocked_for_no_credit_only(self):
        postpaid = self._start_contract("Postpaid Contract", "POSTPAID-1")
        self._activate_devices(postpaid, self.plan, ["U-3"])
        api = self.Device.with_user(self.integration_user)
        self.assertEqual(api.api_suspend([{"identifier": "U-3"}]), [{"identifier": "U-3", "state": "suspended"}])
        self._block_for_no_credit()
        results = api.api_resume([{"identifier": "U-1"}, {"identifier": "U-3"}, {"identifier": "nope"}])
        self.assertEqual(results[0], {
            "identifier": "U-1",
            "error": "device 'U-1' is blocked for no credit: a top-up of its contract's prepaid credit releases it",
        })
        self.assertEqual(results[1], {"identifier": "U-3", "state": "active"})
        self.assertEqual(results[2]["error"], "unknown device 'nope'")
        self.assertEqual((self.device_1.state, self.device_1.iot_no_credit), ("suspended", True))
        self.assertEqual(self.device_3.state, "active")
        self.assertFalse(self._commands("unblock"))

    def test_platform_unblocking_events_refused_for_devices_blocked_for_no_credit(self):
        self._block_for_no_credit()
        answer = self.Device.with_user(self.integration_user).api_post_events([
            {"identifier": "U-1", "event_type": "resumed", "timestamp": "2022-04-15T10:00:00Z"},
            {"identifier": "U-1", "event_type": "door_open", "timestamp": "2022-04-15T10:00:00Z"},
            {"identifier": "U-2", "event_type": " Unblock", "timestamp": "2022-04-15T10:00:00Z"},
            {"identifier": "U-3", "event_type": "resumed", "timestamp": "2022-04-15T10:00:00Z"},
            {"identifier": "ghost", "event_type": "x", "timestamp": "2022-04-15T10:00:00Z"},
        ])
        reason = "device %r is blocked for no credit: a top-up of its contract's prepaid credit releases it"
        self.assertEqual(answer["accepted"], 2)
        self.assertEqual(answer["rejected"], [
            {"index": 0, "reason": reason % "U-1"},
            {"index": 2, "reason": reason % "U-2"},
            {"index": 4, "reason": "unknown device 'ghost'"},
        ])
        events = self.env["iot_billing.device.event"].search(
            [("device_id", "in", (self.device_1 | self.device_3).ids), ("event_type", "in", ("door_open", "resumed"))])
        self.assertEqual(sorted(events.mapped("event_type")), ["door_open", "resumed"])
        self.assertEqual(events.filtered(lambda event: event.event_type == "resumed").device_id, self.device_3)

    def test_contract_billed_in_steps_links_the_credit_applied(self):
        self._grant(2.0)
        self._ingest([self._reading(quantity="10", timestamp="2022-04-14T09:00:00Z"),  # 5.00, 3.00 uncovered
                      self._reading(identifier="U-2", quantity="4", timestamp="2022-04-14T09:00:00Z")])  # 2.00
        # Two periods, one a chunk: the contract is billed in committed steps (stage, stage,
        # invoice, link, link, post). Billing in steps is the grouping module's choice: forced
        # here, all else is the engine's.
        self.env["ir.config_parameter"].set_param("iot_contract.billing_chunk_schedules", "1")
        run = self.env["iot.billing.run"].create({"date": date(2022, 4, 30)})
        run.write({"state": "running", "prepared": True})
        outcomes = []
        with patch.object(type(self.env["iot.contract"]), "_iot_billed_in_steps", lambda contract: True), \
                freeze_time("2022-04-30"):
            while (outcome := self.env["iot.billing.engine"]._bill_next_chunk(run)) != "finished":
                outcomes.append(outcome)
                self.assertLess(len(outcomes), 20, "the steps end")
        self.assertEqual(outcomes, ["billed"] * 6)
        schedules = self.april_1 | self._schedule(self.device_2.contract_item_ids, "2022-04-01")
        invoice = schedules.invoice_id
        self.assertEqual(len(invoice), 1)
        self.assertEqual(set(schedules.mapped("state")), {"invoiced"})
        credit = invoice.invoice_line_ids.filtered(lambda line: line.price_subtotal < 0)
        self.assertEqual(credit.product_id, self.env.ref("iot_prepaid.product_prepaid_credit"))
        self.assertEqual(credit.price_subtotal, -2.0)
        self.assertEqual(self.april_1.iot_credit_line_id, credit, "the staged credit part is linked to its line")
        self.assertFalse(schedules[1:].iot_credit_line_id, "U-2's usage was paid by no credit")
        # 2 fees of 10.00 + 7.00 usage - 2.00 credit
        self.assertEqual(invoice.amount_untaxed, 25.0)
        self.assertEqual(self.wallet.balance, 0.0)
        self.assertLedgerConsistent()
