from ast import literal_eval
from unittest.mock import patch

from freezegun import freeze_time

from odoo import Command
from odoo.addons.iot_dunning.models import iot_contract as iot_contract_module
from odoo.tests import Form, tagged

from .common import IotDunningCommon


@tagged("post_install", "-at_install")
class TestDunningLevels(IotDunningCommon):
    def test_invoice_of_the_contract_is_overdue_after_its_due_date(self):
        self.assertEqual((self.invoice.amount_total, str(self.invoice.invoice_date_due)), (49.5, "2022-04-30"))
        with freeze_time("2022-05-01"):
            self.assertEqual(self.contract.iot_overdue_invoice_ids, self.invoice)
            self.assertEqual(self.contract.iot_overdue_amount, 49.5)
            self.assertEqual(self.contract.iot_dunning_next_level_id, self.reminder)
            self.assertEqual(str(self.contract.iot_dunning_next_date), "2022-05-05")
            self.assertEqual(str(self.contract.iot_block_date), "2022-05-30")

    def test_levels_happen_once_per_invoice_and_rerun_changes_nothing(self):
        messages_before = len(self._chatter())
        self._evaluate("2022-05-04")
        self.assertFalse(self.contract.iot_dunning_line_ids)
        self.assertFalse(self.contract.iot_dunning_level_id)

        self._evaluate("2022-05-05")
        self.assertEqual(self.contract.iot_dunning_line_ids.level_id, self.reminder)
        self.assertEqual(self.contract.iot_dunning_level_id, self.reminder)
        mails = self._chatter().filtered(lambda message: message.message_type == "comment")
        self.assertEqual(len(mails), 1)
        self.assertEqual(mails.partner_ids, self.customer)
        self.assertIn(self.invoice.name, mails.body)
        # Before blocking, the e-mail names the devices to be blocked and the day.
        self.assertIn("SL-1", mails.body)
        self.assertNotIn("SL-EMERGENCY", mails.body)
        self.assertIn("05/30/2022", mails.body)
        note = self._chatter().filtered(lambda message: message.message_type == "notification")[:1]
        self.assertIn("level(s) reached: Reminder (+5 d); 1 overdue invoice(s), $&nbsp;49.50 overdue", note.body)
        messages_after_reminder = len(self._chatter())
        self.assertEqual(messages_after_reminder - messages_before, 2)  # the e-mail and the note

        self._evaluate("2022-05-05")
        self._evaluate("2022-05-06")
        self.assertEqual(len(self.contract.iot_dunning_line_ids), 1)
        self.assertEqual(len(self._chatter()), messages_after_reminder)

        self._evaluate("2022-05-15")
        self.assertEqual(self.contract.iot_dunning_line_ids.level_id, self.reminder | self.fee_level)
        self.assertEqual(self.light_1.state, "active")

        self._evaluate("2022-05-30")
        self.assertEqual(self.contract.iot_dunning_level_id, self.block_level)
        blocked = self.light_1 | self.light_2
        self.assertEqual(set(blocked.mapped("state")), {"suspended"})
        self.assertEqual(set(blocked.mapped("iot_suspension_reason")), {"unpaid"})
        self.assertEqual((self.emergency.state, self.emergency.iot_suspension_reason), ("active", False))
        self.assertEqual(len(self._commands(blocked, "block")), 2)
        self.assertFalse(self._commands(self.emergency, "block"))
        self.assertTrue(self.contract.iot_dunning_blocked_since)
        self.assertEqual(self.contract.iot_dunning_line_ids.filtered("level_id.block").blocked_count, 2)
        self.assertEqual(
            set(self.light_1.current_item_id.mapped("state")), {"suspended"}, "contract items follow the device"
        )

        lines, messages = len(self.contract.iot_dunning_line_ids), len(self._chatter())
        self._evaluate("2022-05-30")
        self._evaluate("2022-06-20")
        self.assertEqual(len(self.contract.iot_dunning_line_ids), lines)
        self.assertEqual(len(self._chatter()), messages)
        self.assertEqual(len(self._commands(blocked, "block")), 2)

    def test_a_contract_found_late_reaches_every_level_with_one_email(self):
        self._evaluate("2022-06-10")
        note = self._chatter().filtered(lambda message: message.message_type == "notification")[:1]
        self.assertIn("Reminder (+5 d), Fee (+15 d), Block (+30 d)", note.body)
        self.assertIn("2 device(s) blocked", note.body)
        with freeze_time("2022-06-10"):
            self.assertEqual(self.customer.iot_dunning_level_id, self.block_level)
            self.assertTrue(self.customer.iot_dunning_blocked_since)
        self.assertEqual(self.contract.iot_dunning_line_ids.level_id, self.policy.level_ids)
        mails = self._chatter().filtered(lambda message: message.message_type == "comment")
        self.assertEqual(len(mails), 1)
        self.assertEqual(self.light_1.iot_suspension_reason, "unpaid")

    def test_views_open_for_the_billing_group(self):
        self._evaluate("2022-06-10")
        with freeze_time("2022-06-10"):
            contract = Form(self.contract.with_user(self.billing_user))
            self.assertEqual(contract.iot_dunning_level_id, self.block_level)
            self.assertEqual(contract.iot_blocked_device_count, 2)
            device = Form(self.light_1.with_user(self.billing_user))
            self.assertEqual(device.iot_suspension_reason, "unpaid")
            policy = Form(self.policy.with_user(self.billing_user))
            self.assertEqual(len(policy.level_ids), 3)
        for xml_id in ("iot_contract_dunning_action", "iot_device_blocked_action", "iot_dunning_line_action"):
            action = self.env.ref("iot_dunning." + xml_id)
            domain = literal_eval(action.domain or "[]")
            records = self.env[action.res_model].with_user(self.billing_user).search(domain)
            self.assertTrue(records, action.name)

    def test_below_minimum_nothing_happens(self):
        self.policy.minimum_amount = 49.51
        self._evaluate("2022-06-10")
        self.assertFalse(self.contract.iot_dunning_line_ids)
        self.assertEqual(self.light_1.state, "active")
        self.policy.minimum_amount = 49.50  # at the minimum: dunning applies
        self._evaluate("2022-06-10")
        self.assertEqual(self.light_1.state, "suspended")

    def test_contract_never_block_gets_reminders_only(self):
        self.contract.iot_never_block = True
        self._evaluate("2022-06-10")
        self.assertEqual(len(self.contract.iot_dunning_line_ids), 3)
        self.assertEqual(set((self.light_1 | self.light_2).mapped("state")), {"active"})
        self.assertFalse(self._commands(self.light_1, "block"))

    def test_contract_policy_overrides_the_company_policy(self):
        gentle = self.env["iot.dunning.policy"].create(
            {"name": "Gentle", "level_ids": [Command.create({"name": "Only a note", "days_after_due": 60})]}
        )
        self.contract.iot_dunning_policy_id = gentle
        self._evaluate("2022-06-10")
        self.assertFalse(self.contract.iot_dunning_line_ids)
        self._evaluate("2022-06-29")
        self.assertEqual(self.contract.iot_dunning_line_ids.level_id.name, "Only a note")
        self.assertEqual(self.light_1.state, "active")

    def test_scope_invoiced_blocks_only_devices_billed_on_the_overdue_invoices(self):
        with freeze_time("2022-05-01"):
            newcomer = self._new_active_device("SL-NEW", date_start="2022-05-01")
        self.policy.device_scope = "invoiced"
        self._evaluate("2022-06-10")
        self.assertEqual(self.light_1.state, "suspended")
        self.assertEqual(newcomer.state, "active")

    def test_scope_contract_blocks_every_device_of_the_contract(self):
        with freeze_time("2022-05-01"):
            newcomer = self._new_active_device("SL-NEW", date_start="2022-05-01")
        self._evaluate("2022-06-10")
        self.assertEqual((newcomer.state, newcomer.iot_suspension_reason), ("suspended", "unpaid"))

    def test_manual_suspension_is_kept_and_not_counted(self):
        self.light_2.action_suspend()
        self.assertEqual(self.light_2.iot_suspension_reason, "manual")
        self._evaluate("2022-06-10")
        self.assertEqual(self.light_2.iot_suspension_reason, "manual")
        self.assertEqual(self.contract.iot_dunning_line_ids.filtered("level_id.block").blocked_count, 1)

    def test_cron_evaluates_in_chunks_and_once_a_day(self):
        Contract = self.env["iot.contract"]
        with freeze_time("2022-06-10"):
            Contract._cron_iot_dunning()
            self.assertEqual(self.contract.iot_dunning_evaluated_on.isoformat(), "2022-06-10")
            self.assertEqual(len(self.contract.iot_dunning_line_ids), 3)
            commands = self.Command.search_count([])
            Contract._cron_iot_dunning()
            self.assertEqual(len(self.contract.iot_dunning_line_ids), 3)
            self.assertEqual(self.Command.search_count([]), commands)

    def test_cron_commits_chunks_and_calls_again_for_the_rest(self):
        contract_2 = self.contract.copy({"reference": "IOT-FLEET-002", "name": "Second"})
        with freeze_time("2022-04-01"):
            device = self._new_active_device("SL-OTHER", contract=contract_2)
        with freeze_time("2022-04-30"):
            self._run_billing("2022-04-30")
        progress = []
        Cron = type(self.env["ir.cron"])
        with (
            patch.object(iot_contract_module, "CONTRACTS_PER_CHUNK", 1),
            patch.object(Cron, "_notify_progress", lambda cron, **kwargs: progress.append(kwargs)),
            freeze_time("2022-06-10"),
        ):
            self.env["iot.contract"]._cron_iot_dunning()
            self.assertEqual(progress, [{"done": 1, "remaining": 1}])
            self.assertEqual((self.light_1.state, device.state), ("suspended", "active"))
            self.env["iot.contract"]._cron_iot_dunning()
            self.assertEqual(progress[-1], {"done": 1, "remaining": 0})
            self.assertEqual(device.state, "suspended")
            self.env["iot.contract"]._cron_iot_dunning()
            self.assertEqual(progress[-1], {"done": 0, "remaining": 0})

    def test_fee_goes_once_on_the_next_invoice_priced_like_a_manual_line(self):
        self._evaluate("2022-05-15")
        fee_line = self.contract.iot_dunning_line_ids.filtered("fee_product_id")
        self.assertTrue(fee_line and not fee_line.fee_invoiced)
        with freeze_time("2022-05-31"):
            result = self._run_billing("2022-05-31")
        may = self.env["account.move"].browse(result["invoice_ids"])
        fee_move_line = may.invoice_line_ids.filtered(lambda line: line.product_id == self.fee_product)
        self.assertEqual(fee_line.fee_line_id, fee_move_line)
        self.assertTrue(fee_line.fee_invoiced)
        manual = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.customer.id,
                "invoice_date": "2022-05-31",
                "invoice_line_ids": [Command.create({"product_id": self.fee_product.id, "quantity": 1})],
            }
        )
        self.assertEqual(
            (fee_move_line.price_unit, fee_move_line.price_subtotal, fee_move_line.price_total),
            (manual.invoice_line_ids.price_unit, manual.invoice_line_ids.price_subtotal, 5.5),
        )
        self.assertEqual(manual.amount_total, 5.5)
        # 3 x 15.00 + 5.00, 10% tax: the fee is in the invoice total to the cent.
        self.assertEqual(may.amount_total, 55.0)
        with freeze_time("2022-06-30"):
            june = self.env["account.move"].browse(self._run_billing("2022-06-30")["invoice_ids"])
        self.assertFalse(june.invoice_line_ids.filtered(lambda line: line.product_id == self.fee_product))
