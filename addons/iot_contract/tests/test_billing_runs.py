import threading
import time
from datetime import date
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.addons.iot_contract.tools import CronBudget, prefork_limit_start, try_lock_for_valuation
from odoo.addons.iot_contract.tools.committed_steps import CRON_WORKER_SLEEP
from odoo.addons.iot_device.tools import ApiInputError
from odoo.exceptions import AccessError
from odoo.tests import Form, freeze_time, tagged
from odoo.tools import config

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestBillingRuns(IotContractCommon):
    """What a run shows: its progress, its failures (chatter, activity), api_status, chunk size."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.second = cls.env["iot.contract"].create(
            {
                "name": "Second",
                "reference": "IOT-RUNS-2",
                "partner_id": cls.customer.id,
                "journal_id": cls.sale_journal.id,
            }
        )

    def setUp(self):
        super().setUp()
        for index, contract in enumerate((self.contract, self.second)):
            self._activate(self._pending_device("RUNS-%d" % index), contract=contract)

    def test_small_run_is_answered_at_once_with_one_chunk(self):
        answer = self._run_billing("2022-04-30")
        run = self.BillingRun.browse(answer["run_id"])
        self.assertEqual(answer["state"], "done")
        self.assertEqual((answer["schedules_done"], answer["schedules_remaining"], answer["chunks"]), (2, 0, 1))
        self.assertEqual(len(answer["invoice_ids"]), 2)
        self.assertEqual((run.chunk_ids.contract_count, run.chunk_ids.schedule_count), (2, 2))
        self.assertTrue(run.date_started and run.date_finished)
        self.assertIn("Billed 2 schedules of 2 contracts in 2 invoices", run.message_ids[0].body)

    def test_run_invoices_name_their_run_without_a_creation_note(self):
        """No "Invoice Created" note per invoice (a run makes thousands): the invoice names its run,
        on its form too; its followers are Odoo's (the customer, from the posting)."""
        run = self.BillingRun.with_user(self.billing_user).with_context(tracking_disable=False)
        answer = run.api_run("2022-04-30")  # with the chatter the tests' environment turns off
        invoices = self.env["account.move"].browse(answer["invoice_ids"])
        self.assertEqual(len(invoices), 2)
        self.assertEqual(invoices.iot_billing_run_id.id, answer["run_id"])
        for invoice in invoices:
            self.assertEqual(invoice.state, "posted")
            self.assertFalse(invoice.message_ids.filtered(lambda message: "Invoice Created" in (message.body or "")))
            self.assertIn(self.customer, invoice.message_partner_ids)
        form = self.env["account.move"].with_user(self.billing_user).get_view(view_type="form")["arch"]
        self.assertIn('name="iot_billing_run_id"', form)

    def test_run_larger_than_a_chunk_is_left_to_the_chunk_crons(self):
        self.env["ir.config_parameter"].set_param("iot_contract.billing_chunk_contracts", "1")
        crons = self.env.ref("iot_contract.iot_billing_run_chunk_cron") | self.env.ref(
            "iot_contract.iot_billing_run_chunk_cron_2"
        )
        answer = self._run_billing("2022-04-30")
        self.assertEqual(answer["state"], "running")
        self.assertEqual((answer["schedules_done"], answer["schedules_remaining"], answer["invoice_ids"]), (0, 2, []))
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "in", crons.ids)])
        self.assertEqual(triggers.cron_id, crons, "both chunk workers are started")
        run = self.BillingRun.browse(answer["run_id"])
        self.assertIn("billed in the background", run.message_ids[0].body)

    def test_copy_of_a_chunk_cron_is_one_more_chunk_worker(self):
        """Odoo runs a cron on one worker at a time: a cluster with more cron workers copies the
        chunk cron, and runs start the copies too; an inactive copy is left alone."""
        self.env["ir.config_parameter"].set_param("iot_contract.billing_chunk_contracts", "1")
        shipped = self.env.ref("iot_contract.iot_billing_run_chunk_cron")
        third = shipped.copy({"name": "IoT: billing run chunks (third worker)", "active": True})
        idle = shipped.copy({"name": "IoT: billing run chunks (switched off)", "active": False})
        crons = shipped | self.env.ref("iot_contract.iot_billing_run_chunk_cron_2") | third
        self.assertEqual(self.env["iot.billing.engine"]._chunk_crons(), crons)
        self._run_billing("2022-04-30")
        triggers = self.env["ir.cron.trigger"].search([("cron_id", "in", (crons | idle).ids)])
        self.assertEqual(triggers.cron_id, crons)

    def test_contract_without_sales_journal_fails_with_its_reason(self):
        """A company without a chart of accounts has no sales journal: the contract's error says so,
        not a database error, and the other contract is billed."""
        self.env.flush_all()
        self.env.cr.execute("UPDATE iot_contract SET journal_id = NULL WHERE id = %s", (self.second.id,))
        self.second.invalidate_recordset(["journal_id"])
        answer = self._run_billing("2022-04-30")
        (error,) = answer["errors"]
        self.assertEqual(error["contract"], "IOT-RUNS-2")
        self.assertIn("has no sales journal", error["message"])
        self.assertEqual(len(answer["invoice_ids"]), 1)

    def test_failed_contract_is_visible_on_run_contract_and_billing_activity(self):
        original = type(self.env["iot.contract"])._iot_invoice_schedules

        def failing(contracts, schedules, run):
            if self.second in contracts:
                raise ValueError("no journal for this test")
            return original(contracts, schedules, run)

        with patch.object(type(self.env["iot.contract"]), "_iot_invoice_schedules", failing):
            answer = self._run_billing("2022-04-30")
        run = self.BillingRun.browse(answer["run_id"])
        self.assertEqual(run.state, "error")
        self.assertEqual([error["contract"] for error in answer["errors"]], ["IOT-RUNS-2"])
        self.assertEqual(len(answer["invoice_ids"]), 1, "the other contract is billed")
        self.assertTrue(any("IOT-RUNS-2: no journal for this test" in message.body for message in run.message_ids))
        self.assertIn(self.billing_user, run.activity_ids.user_id)
        self.assertTrue(any("no journal for this test" in message.body for message in self.second.message_ids))

    def test_deadlock_is_retried_like_a_serialization_failure_not_recorded(self):
        original = type(self.env["iot.contract"])._iot_invoice_schedules
        deadlocks = []

        def deadlocking_once(contracts, schedules, run):
            # The chunk's batch, then the contract alone, meet the deadlock; the next run does not.
            if self.second in contracts and len(deadlocks) < 2:
                deadlocks.append(run.id)
                # A real error of PostgreSQL's, as a deadlock with another transaction raises it.
                self.env.cr.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = 'deadlock_detected'; END $$"
                )
            return original(contracts, schedules, run)

        with patch.object(type(self.env["iot.contract"]), "_iot_invoice_schedules", deadlocking_once):
            answer = self._run_billing("2022-04-30")
            self.assertEqual(len(deadlocks), 2)
            self.assertEqual((answer["state"], answer["errors"]), ("done", []), "a deadlock is no contract's failure")
            self.assertEqual((answer["schedules_done"], answer["schedules_skipped"]), (1, 1))
            again = self._run_billing("2022-04-30")
        self.assertEqual((again["state"], again["schedules_done"], again["errors"]), ("done", 1, []))
        self.assertEqual(len(again["invoice_ids"]), 1, "the contract is billed by the next run")

    def test_api_status_checks_its_input_and_the_company(self):
        answer = self._run_billing("2022-04-30")
        status = self.BillingRun.with_user(self.billing_user).api_status(answer["run_id"])
        self.assertEqual(
            {key: status[key] for key in ("run_id", "state", "invoice_ids")},
            {key: answer[key] for key in ("run_id", "state", "invoice_ids")},
        )
        with self.assertRaises(ApiInputError):
            self.BillingRun.api_status("1")
        with self.assertRaises(ApiInputError):
            self.BillingRun.api_status(answer["run_id"] + 1000)
        other = self.env["res.company"].create({"name": "Other runs company"})
        self.billing_user.company_ids |= other
        with self.assertRaises(AccessError):
            self.BillingRun.with_user(self.billing_user).with_company(other).api_status(answer["run_id"])

    def test_run_meeting_the_valuation_waits_for_it_instead_of_skipping(self):
        # Another transaction values the company's usage: it holds the company's lock.
        with self.registry.cursor() as valuation_cr:
            self.assertTrue(try_lock_for_valuation(valuation_cr, self.company.id))
            answer = self._run_billing("2022-04-30")
            valuation_cr.rollback()
        self.assertEqual((answer["state"], answer["schedules_skipped"], answer["schedules_done"]), ("running", 0, 0))
        self.assertEqual(answer["schedules_remaining"], 2)

    def test_valuation_lock_is_one_per_company(self):
        other = self.env["res.company"].create({"name": "Other valuation company"})
        with self.registry.cursor() as valuation_cr:
            env = api.Environment(valuation_cr, SUPERUSER_ID, {})
            self.assertTrue(try_lock_for_valuation(env.cr, other.id))
            answer = self._run_billing("2022-04-30")
            valuation_cr.rollback()
        self.assertEqual(answer["state"], "done", "another company's valuation does not hold this one")

    def test_wizard_creates_the_run_starts_it_and_opens_it(self):
        with freeze_time("2022-05-02"):
            wizard_form = Form(self.env["iot.billing.run.wizard"].with_user(self.billing_user))
            wizard_form.date = date(2022, 4, 30)
            action = wizard_form.save().action_run()
        run = self.BillingRun.browse(action["res_id"])
        self.assertEqual((run.state, run.schedule_count, run.invoice_count), ("done", 2, 2))

    def test_cron_budget_counts_from_the_prefork_watchdog_ping(self):
        now = time.time()
        # Woken by a trigger right after its previous jobs: the ping followed them.
        self.assertEqual(prefork_limit_start(now - 30, now), now - 30)
        # Slept for who knows how long (or first poll): as long as a cron worker may sleep.
        self.assertEqual(prefork_limit_start(now - 500, now), now - CRON_WORKER_SLEEP)
        self.assertEqual(prefork_limit_start(None, now), now - CRON_WORKER_SLEEP)
        thread = threading.current_thread()
        self.env.cr._iot_cron_series = None  # a series of its own, whatever ran before on this cursor
        limits = {"limit_time_real": 120, "limit_time_real_cron": -1}
        with patch.dict(config.options, limits):
            thread.iot_limit_start = now - 100  # the jobs before this one used 100 s of the 120
            try:
                self.assertFalse(CronBudget(self.env.cr).allows(5), "100 s + 2 x 5 s + 15 s is over 120 s")
            finally:
                thread.iot_limit_start = None
            thread.iot_limit_start = now - 10
            try:
                self.assertTrue(CronBudget(self.env.cr).allows(5))
            finally:
                thread.iot_limit_start = None
            # Odoo calls the cron again in the same series: a chunk of 50 s seen by an earlier
            # call still counts, although the new call has billed none yet.
            thread.iot_limit_start = now - 10
            try:
                self.assertFalse(CronBudget(self.env.cr).allows(50), "10 s + 2 x 50 s + 15 s is over 120 s")
                self.assertFalse(CronBudget(self.env.cr).allows(0), "the series' longest chunk is remembered")
            finally:
                thread.iot_limit_start = None
                self.env.cr._iot_cron_series = None  # the series of this test's calls ends
