import logging
import os
import socket
import threading
import time
from decimal import Decimal

import psycopg2
from psycopg2 import errorcodes

from odoo import Command, api, fields, models
from odoo.addons.iot_device.tools import ApiInputError, to_decimal
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..tools import CronBudget, try_lock_for_billing

_logger = logging.getLogger(__name__)

# Raised when a concurrent transaction changed (invoiced) a row after this one
# began: the row is another's; this transaction leaves it alone.
CONCURRENT_UPDATE = (errorcodes.SERIALIZATION_FAILURE, errorcodes.LOCK_NOT_AVAILABLE)
# Chunk size (system parameters of the same names override them). A chunk is at most
# this many contracts (one account.move create and post, see _bill_contracts) and, past
# its first contract, this many schedules: ~3-6 s on the benchmark machine (docs/benchmarks.md).
CHUNK_CONTRACTS = 50
CHUNK_SCHEDULES = 10000
# How long a cron call waits, a second at a time, for contracts another worker holds or
# for a valuation step, before it leaves the run to a later call.
WAIT_SECONDS = 10


class IotBillingRun(models.Model):
    _name = "iot.billing.run"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _description = "IoT Billing Run"
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(compute="_compute_name", store=True)
    date = fields.Date(
        required=True,
        default=fields.Date.context_today,
        index=True,
        help="Schedules due on or before this date are invoiced.",
    )
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    user_id = fields.Many2one("res.users", default=lambda self: self.env.user, readonly=True)
    state = fields.Selection(
        [("draft", "Draft"), ("running", "Running"), ("done", "Done"), ("error", "Done with errors")],
        required=True,
        default="draft",
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    prepared = fields.Boolean(
        readonly=True, copy=False, help="The run's once-only preparation (late usage planning) is committed."
    )
    date_started = fields.Datetime(string="Started", readonly=True, copy=False)
    date_finished = fields.Datetime(string="Finished", readonly=True, copy=False)
    chunk_ids = fields.One2many("iot.billing.run.chunk", "run_id", string="Chunks")
    schedule_count = fields.Integer(string="Schedules Invoiced", compute="_compute_counts")
    skipped_count = fields.Integer(
        string="Schedules Skipped",
        compute="_compute_counts",
        help="Due schedules another billing run held when this one, answered at once, met them. "
        "A run billed in chunks waits for them instead.",
    )
    invoice_count = fields.Integer(string="Invoices", compute="_compute_counts")
    contract_count = fields.Integer(string="Contracts", compute="_compute_counts")
    chunk_count = fields.Integer(string="Chunks Done", compute="_compute_counts")
    remaining_count = fields.Integer(
        string="Schedules Remaining", compute="_compute_remaining_count", help="Due schedules still to bill."
    )
    duration = fields.Float(string="Elapsed (s)", compute="_compute_duration", digits=(16, 0))
    invoice_ids = fields.One2many("account.move", "iot_billing_run_id", string="Invoices Created")
    error_ids = fields.One2many("iot.billing.run.error", "run_id", string="Errors")
    error_count = fields.Integer(compute="_compute_error_count")

    @api.depends("date", "company_id")
    def _compute_name(self):
        for run in self:
            run.name = self.env._("Billing %(date)s (%(company)s)", date=run.date, company=run.company_id.name)

    @api.depends("chunk_ids")
    def _compute_counts(self):
        sums = {
            run.id: values
            for run, *values in self.env["iot.billing.run.chunk"]._read_group(
                [("run_id", "in", self.ids)],
                ["run_id"],
                ["schedule_count:sum", "skipped_count:sum", "invoice_count:sum", "contract_count:sum", "__count"],
            )
        }
        for run in self:
            schedules, skipped, invoices, contracts, chunks = sums.get(run.id, (0, 0, 0, 0, 0))
            run.schedule_count, run.skipped_count, run.invoice_count = schedules, skipped, invoices
            run.contract_count, run.chunk_count = contracts, chunks

    @api.depends("state", "chunk_ids")
    def _compute_remaining_count(self):
        for run in self:
            if run.state in ("draft", "running") and run.id:
                run.remaining_count = self.env["iot.invoicing.schedule"].search_count(
                    run._iot_remaining_domain()
                ) + run._iot_staged_schedule_count()
            else:
                run.remaining_count = 0

    @api.depends("date_started", "date_finished")
    def _compute_duration(self):
        now = fields.Datetime.now()
        for run in self:
            if run.date_started:
                run.duration = ((run.date_finished or now) - run.date_started).total_seconds()
            else:
                run.duration = 0

    @api.constrains("date")
    def _check_date_not_in_future(self):
        for run in self:
            today = fields.Date.context_today(run)
            if run.date > today:
                raise ValidationError(
                    self.env._(
                        "A billing run cannot be dated %(date)s, after today (%(today)s): it would invoice "
                        "periods that have not happened yet.",
                        date=run.date,
                        today=today,
                    )
                )

    @api.depends("error_ids")
    def _compute_error_count(self):
        for run in self:
            run.error_count = len(run.error_ids)

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------
    @api.model
    def api_run(self, date=None):
        """Bill the current company's due schedules; external API.

        ``date``: "YYYY-MM-DD", today when empty. A run that fits in one chunk is
        billed before answering; a larger one is billed in the background by the
        chunk crons (follow it with ``api_status``). Answers ``api_status``'s dict:
        ``{"run_id", "state", "invoice_ids", "errors": [{"contract_id", "contract",
        "message"}], ...}``.
        """
        if date:
            if not isinstance(date, str):
                raise ApiInputError("'date' must be a 'YYYY-MM-DD' string")
            try:
                date = fields.Date.to_date(date)
            except ValueError:
                raise ApiInputError("'date' %r is not 'YYYY-MM-DD'" % date[:32]) from None
        self.check_access("create")
        run = self.create({"date": date or fields.Date.context_today(self)})
        run._iot_start()
        return run._iot_status()

    @api.model
    def api_status(self, run_id):
        """Where a run stands; external API.

        Answers ``{"run_id", "state" ("running", "done" or "error"), "date",
        "schedules_done", "schedules_remaining", "schedules_skipped", "chunks",
        "elapsed" (seconds), "invoice_ids", "errors"}``.
        """
        if not isinstance(run_id, int) or isinstance(run_id, bool):
            raise ApiInputError("'run_id' must be the id of a billing run")
        run = self.browse(run_id).exists()
        if not run:
            raise ApiInputError("billing run %d does not exist" % run_id)
        run.check_access("read")
        return run._iot_status()

    def _iot_status(self):
        self.ensure_one()
        return {
            "run_id": self.id,
            "state": self.state,
            "date": fields.Date.to_string(self.date),
            "schedules_done": self.schedule_count,
            "schedules_remaining": self.remaining_count,
            "schedules_skipped": self.skipped_count,
            "chunks": self.chunk_count,
            "elapsed": round(self.duration),
            "invoice_ids": self.invoice_ids.ids,
            "errors": [
                {
                    "contract_id": error.contract_id.id,
                    "contract": error.contract_id.reference,
                    "message": error.message,
                }
                for error in self.error_ids
            ],
        }

    @api.model
    def _cron_run_billing(self):
        """Daily: one run per company that has schedules a run of today would bill, then drive them.

        A period is billed by the first run on or after its due date (the run's
        own domain: invoice date, usage grace days, contract state); the other
        days create no run. A company whose run is still running gets no other:
        when Odoo calls this cron again at once (progress API), it only drives.
        """
        today = fields.Date.context_today(self)
        Schedule = self.env["iot.invoicing.schedule"].sudo()
        due = Schedule._read_group([("state", "=", "planned"), ("invoice_date", "<=", today)], ["company_id"])
        running = set(self.search([("state", "=", "running")]).company_id.ids)
        for (company,) in due:
            values = {"date": today, "company_id": company.id}
            if company.id not in running and Schedule.search_count(self.new(values)._due_schedule_domain(), limit=1):
                self.with_company(company).create(values)._iot_start()
        if self.search_count([("state", "=", "running")], limit=1):
            self._iot_drive_runs()

    @api.model
    def _cron_process_runs(self):
        """Chunk workers (the crons *IoT: billing run chunks*): bill chunks of running runs."""
        self._iot_drive_runs()

    def action_run(self):
        for run in self:
            if run.state != "draft":
                raise UserError(self.env._("This billing run has already been executed."))
            run.with_company(run.company_id)._iot_start()
        return True

    # ------------------------------------------------------------------
    # Hooks (overridden with super())
    # ------------------------------------------------------------------
    def _due_schedule_domain(self):
        self.ensure_one()
        return [
            ("state", "=", "planned"),
            ("invoice_date", "<=", self.date),
            ("company_id", "=", self.company_id.id),
            ("contract_id.state", "!=", "draft"),
        ]

    def _iot_run_prepare(self):
        """Once per run, before its first chunk, in the transaction that marks it prepared.

        Runs exactly once even if Odoo dies: a crash before that commit rolls it back
        and the next worker prepares again. Base: nothing to prepare.
        """
        return True

    def _iot_run_finish(self):
        """Once per run, after its last chunk, in the transaction that gives its final state."""
        return True

    # ------------------------------------------------------------------
    # Engine: start, prepare, chunks, finish
    # ------------------------------------------------------------------
    def _iot_remaining_domain(self):
        """Due schedules this run still has to bill: not those of contracts that failed in it."""
        self.ensure_one()
        failed = self.env["iot.billing.run.error"].search([("run_id", "=", self.id)]).contract_id
        domain = self._due_schedule_domain()
        if failed:
            domain = [("contract_id", "not in", failed.ids)] + domain
        return domain

    def _iot_chunk_size(self):
        get_param = self.env["ir.config_parameter"].sudo().get_param
        return (
            int(get_param("iot_contract.billing_chunk_contracts", CHUNK_CONTRACTS)),
            int(get_param("iot_contract.billing_chunk_schedules", CHUNK_SCHEDULES)),
        )

    def _iot_fits_one_chunk(self):
        max_contracts, max_schedules = self._iot_chunk_size()
        groups = self.env["iot.invoicing.schedule"]._read_group(
            self._due_schedule_domain(), ["contract_id"], ["__count"]
        )
        return len(groups) <= max_contracts and sum(count for _contract, count in groups) <= max_schedules

    def _iot_start(self):
        """Bill a run that fits in one chunk now; queue a larger one for the chunk crons.

        A run that meets the usage valuation (the company's billing lock is taken) is
        queued as well: the crons bill it once the valuation has committed.
        """
        self.ensure_one()
        self.write({"state": "running", "date_started": fields.Datetime.now()})
        if self._iot_fits_one_chunk() and try_lock_for_billing(self.env.cr, self.company_id.id):
            self._iot_prepare()
            excluded = set()
            while self._iot_bill_chunk(excluded=excluded) == "billed":
                pass
            self._iot_finish()
            return
        self._message_log(
            body=self.env._(
                "%(count)s due schedules: billed in the background, chunk by chunk (each committed).",
                count=self.remaining_count,
            )
        )
        self._iot_trigger_workers()

    @api.model
    def _iot_chunk_crons(self):
        # sudo: starting the chunk workers is part of running billing, which the Billing group
        # may do without any right on scheduled actions.
        xmlids = ("iot_contract.iot_billing_run_chunk_cron", "iot_contract.iot_billing_run_chunk_cron_2")
        crons = [self.env.ref(xmlid, raise_if_not_found=False) for xmlid in xmlids]
        return self.env["ir.cron"].sudo().browse([cron.id for cron in crons if cron]).filtered("active")

    def _iot_trigger_workers(self, at=None):
        for cron in self._iot_chunk_crons():
            cron._trigger(at)

    def _iot_prepare(self):
        self._iot_run_prepare()
        self.prepared = True

    def _iot_bill_chunk(self, excluded=None):
        """Bill the next chunk of due contracts this transaction can claim.

        ``excluded``: a set of contract ids already handled in this transaction (a run
        answered at once, without commits between its chunks); None in the background,
        where each chunk commits and contracts left planned are looked at again.
        In the background, a contract larger than a chunk is billed in steps instead, one
        step being the chunk (``_iot_bill_step``). Returns "billed", "held" (due contracts
        remain, all held by other transactions, usually other workers of this run), "retry"
        (what it claimed was billed meanwhile) or "finished".
        """
        started = time.monotonic()
        Schedule = self.env["iot.invoicing.schedule"]
        domain = self._iot_remaining_domain()
        counts = {
            contract.id: count
            for contract, count in Schedule._read_group(domain, ["contract_id"], ["__count"])
            if excluded is None or contract.id not in excluded
        }
        max_contracts, max_schedules = self._iot_chunk_size()
        if excluded is None:
            # In the background, a contract larger than a chunk is billed in steps, one
            # worker at a time; the one this worker claims is its chunk.
            in_steps = self._iot_contracts_in_steps()
            large = [
                contract_id
                for contract_id, count in counts.items()
                if count > max_schedules and contract_id not in in_steps
                and self.env["iot.contract"].browse(contract_id)._iot_billed_in_steps()
            ]
            stepped = sorted(in_steps + large)
            claimed = self._iot_claim_contracts(stepped, 1, shared=True) if stepped else []
            if claimed:
                return self._iot_bill_step(self.env["iot.contract"].browse(claimed[0]), started)
            counts = {contract_id: count for contract_id, count in counts.items() if contract_id not in stepped}
            if not counts:
                return "held" if stepped else "finished"
        elif not counts:
            return "finished"
        # Answered at once, every due contract is tried: one held elsewhere is skipped.
        if excluded is not None:
            claimed = self._iot_claim_contracts(sorted(counts), len(counts), changed_is_held=True)
        else:
            claimed = self._iot_claim_contracts(sorted(counts), max_contracts)
        kept, total = [], 0
        for contract_id in claimed[:max_contracts]:
            if kept and total + counts[contract_id] > max_schedules:
                break
            kept.append(contract_id)
            total += counts[contract_id]
        if not kept and excluded is None:
            return "held"
        totals = {"schedules": 0, "skipped": 0, "invoices": 0}
        errors = []
        if kept:
            schedules = Schedule.search(domain + [("contract_id", "in", kept)], order="contract_id, id")
            groups = [(contract, group.ids) for contract, group in schedules.grouped("contract_id").items()]
            if len(groups) == 1 or not self._bill_contracts(groups, totals):
                for contract, schedule_ids in groups:
                    self._bill_contract(contract, schedule_ids, totals, errors)
            self.env["iot.billing.run.error"].create(errors)
        if excluded is not None:
            held = set(counts) - set(claimed)
            totals["skipped"] += sum(counts[contract_id] for contract_id in held)
            excluded.update(held, kept)
        elif not totals["schedules"] and not errors:
            return "retry"  # another worker billed them after this chunk's snapshot: look again
        else:
            # In the background a schedule held elsewhere is looked at again by a later
            # chunk (billed there, or gone): not a skip.
            totals["skipped"] = 0
        self._iot_log_chunk(len(kept), totals, len(errors), started)
        return "billed"

    def _iot_log_chunk(self, contract_count, totals, error_count, started):
        self.env["iot.billing.run.chunk"].create(
            {
                "run_id": self.id,
                "contract_count": contract_count,
                "schedule_count": totals["schedules"],
                "invoice_count": totals["invoices"],
                "skipped_count": totals["skipped"],
                "error_count": error_count,
                "duration": time.monotonic() - started,
                "worker": "%s:%d/%s" % (socket.gethostname(), os.getpid(), threading.current_thread().name),
            }
        )

    def _iot_claim_contracts(self, contract_ids, limit, changed_is_held=False, shared=False):
        """Lock up to ``limit`` of these contracts that no other transaction holds.

        Two workers of one run (or two runs) never bill the same contract at once:
        each bills the contracts it claimed, the locks end with its commit. A contract
        changed since this transaction began raises a serialization failure (the
        background chunk starts again), or counts as held with ``changed_is_held``.
        ``shared``: several workers may hold it at once (the slices of a contract billed
        in steps), none while another holds it alone.
        """
        self.env["iot.contract"].flush_model()
        try:
            with self.env.cr.savepoint(flush=False):
                self.env.cr.execute(
                    """SELECT id FROM iot_contract
                        WHERE id = ANY(%s)
                        ORDER BY id
                        LIMIT %s
                          FOR """ + ("SHARE" if shared else "NO KEY UPDATE") + """ SKIP LOCKED""",
                    [contract_ids, limit],
                    log_exceptions=False,
                )
                return [row[0] for row in self.env.cr.fetchall()]
        except psycopg2.Error as error:
            if not changed_is_held or error.pgcode not in CONCURRENT_UPDATE:
                raise
            return []

    def _iot_finish(self):
        self._iot_run_finish()
        self.env.invalidate_all()
        self.write({"state": "error" if self.error_ids else "done", "date_finished": fields.Datetime.now()})
        self._iot_post_result()

    def _iot_post_result(self):
        """The run's chatter keeps what it did; failures also reach the Billing group.

        Logged notes, not messages: they need no sender e-mail (an API user has none) and
        notify nobody by mail; the activities are what calls for someone's attention.
        """
        self._message_log(
            body=self.env._(
                "Billed %(schedules)s schedules of %(contracts)s contracts in %(invoices)s invoices, "
                "%(chunks)s chunks, %(seconds)s s; %(errors)s contracts failed, %(skipped)s schedules skipped.",
                schedules=self.schedule_count,
                contracts=self.contract_count,
                invoices=self.invoice_count,
                chunks=self.chunk_count,
                seconds=round(self.duration),
                errors=self.error_count,
                skipped=self.skipped_count,
            )
        )
        if not self.error_ids:
            return
        summary = self.env._("Billing run: %(count)s contracts failed", count=self.error_count)
        lines = "\n".join(
            "%s: %s" % (error.contract_id.reference or error.contract_id.display_name, error.message)
            for error in self.error_ids[:50]
        )
        self._message_log(body=summary + "\n" + lines)
        for error in self.error_ids.filtered("contract_id"):
            # sudo: the contract's chatter tells what the run did, whoever may edit the contract.
            error.contract_id.sudo()._message_log(
                body=self.env._("Not invoiced by %(run)s: %(message)s", run=self.display_name, message=error.message)
            )
        group = self.env.ref("iot_contract.group_iot_billing")
        users = group.sudo().users.filtered(lambda user: user.active and not user.share)
        # mail_activity_quick_update: no "assigned to you" mail, which needs a sender e-mail.
        for user in users.filtered(lambda user: self.company_id in user.company_ids):
            self.with_context(mail_activity_quick_update=True).activity_schedule(
                "mail.mail_activity_data_todo", user_id=user.id, summary=summary, note=lines.replace("\n", "<br/>")
            )

    # ------------------------------------------------------------------
    # Background: chunks that commit, under Odoo's limits
    # ------------------------------------------------------------------
    @api.model
    def _iot_drive_runs(self):
        """Work on running runs chunk by chunk, each chunk in its own committed transaction.

        Called by crons (the daily billing cron and the chunk crons) through Odoo 18's
        progress API: the work done and left is reported with ``_notify_progress``, and
        Odoo calls the cron again at once while some is left. A crash loses at most the
        chunk being billed (rolled back: its schedules stay planned and a later chunk
        bills them). The commits are the point of this design.
        """
        budget = CronBudget(self.env.cr)
        self.env.cr.commit()  # a fresh snapshot for the first chunk (cron chunking design)
        chunks, longest, waited = 0, 0.0, 0
        while budget.allows(max(longest, WAIT_SECONDS)):
            self.env.invalidate_all()
            runs = self.sudo().search([("state", "=", "running")], order="id")
            if not runs:
                break
            progressed = False
            for run in runs:
                started = time.monotonic()
                outcome = run.with_company(run.company_id)._iot_work_once()
                if outcome != "wait":
                    progressed = True
                    chunks += outcome == "done"
                    longest = max(longest, time.monotonic() - started)
                    break
            if not progressed:
                # Every run waits: for another worker's chunk, or for a valuation step.
                if waited >= WAIT_SECONDS:
                    break
                time.sleep(1)
                waited += 1
        self.env.invalidate_all()
        runs = self.sudo().search([("state", "=", "running")])
        remaining = sum(runs.mapped("remaining_count")) + len(runs)
        # Done so far in this series of calls: a call that finds the time spent reports the work
        # of the calls before it, so that Odoo does not take the job for finished.
        done = budget.add_done(chunks)
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining if runs else 0)
        if runs and not done:
            # Nothing could move now; Odoo ends a call without progress as if all were done.
            self._iot_trigger_workers(fields.Datetime.add(fields.Datetime.now(), minutes=1))
        elif runs:
            # Odoo re-runs a cron with work left ten times, then leaves it ready without waking
            # any worker: they would find it at their next poll, up to a minute later.
            self._iot_trigger_workers()

    def _iot_work_once(self):
        """Do this run's next step and commit it: "done", "retry" (at once) or "wait"."""
        self.ensure_one()
        cr = self.env.cr
        try:
            if not self.prepared:
                done = self._iot_lock_self("AND prepared IS NOT TRUE") and (self._iot_prepare() or True)
            elif not try_lock_for_billing(cr, self.company_id.id):
                done = False  # the valuation holds the company's schedules
            else:
                outcome = self._iot_bill_chunk()
                if outcome == "retry":
                    cr.rollback()
                    self.env.invalidate_all()
                    return "retry"
                if outcome == "finished":
                    done = self._iot_lock_self("AND state = 'running'") and (self._iot_finish() or True)
                else:
                    done = outcome == "billed"
        except psycopg2.errors.TransactionRollbackError:
            # Another transaction committed the same rows first: look again at once.
            cr.rollback()
            self.env.invalidate_all()
            return "retry"
        except psycopg2.OperationalError:
            raise  # the connection or the server is gone: nothing to record, a worker resumes
        except Exception as error:  # noqa: BLE001 - a bug, not a contract's failure: stop the run visibly
            cr.rollback()
            _logger.exception("Billing run %s stopped", self.id)
            self.env.invalidate_all()
            self.write({"state": "error", "date_finished": fields.Datetime.now()})
            self._message_log(body=self.env._("The run stopped on an error: %(error)s", error=error))
            cr.commit()
            return "done"
        if done:
            cr.commit()
        else:
            cr.rollback()
        self.env.invalidate_all()
        return "done" if done else "wait"

    def _iot_lock_self(self, condition):
        """Lock this run's row if ``condition`` holds: one worker prepares or finishes it."""
        self.flush_recordset()
        self.env.cr.execute(
            "SELECT id FROM iot_billing_run WHERE id = %s " + condition + " FOR NO KEY UPDATE SKIP LOCKED",
            [self.id],
            log_exceptions=False,
        )
        return bool(self.env.cr.fetchone())

    # ------------------------------------------------------------------
    # Contracts billed in steps
    # ------------------------------------------------------------------
    # A contract with more due schedules than a chunk takes (a fleet of a million devices
    # on one contract) cannot be billed in one transaction under Odoo's time limits. Its
    # run bills it in committed steps; stages and links go on several workers at once:
    #   1. stage: a slice of its due schedules is valued, its parts are stored with the key
    #      of the invoice line they go to, and the schedules become "being invoiced";
    #   2. invoice: once none is left, the invoices are created (draft) from the parts' sums;
    #   3. link: slice by slice, the schedules are marked invoiced and their parts linked to
    #      the invoice lines (what the invoice's detail reads), the parts deleted;
    #   4. post: the invoices are posted (when the contract says so).
    # Each step finds where the contract stands from the database: a crash loses at most
    # the step under way, rolled back, and any worker goes on from there.

    def _iot_contracts_in_steps(self):
        # The distinct contracts of a million parts, read as a skip through the index.
        self.env["iot.billing.run.part"].flush_model()
        self.env["iot.billing.run.line"].flush_model()
        self.env.cr.execute(
            """WITH RECURSIVE staged(contract_id) AS (
                   (SELECT contract_id FROM iot_billing_run_part WHERE run_id = %(run)s ORDER BY contract_id LIMIT 1)
                   UNION ALL
                   SELECT (SELECT part.contract_id FROM iot_billing_run_part part
                            WHERE part.run_id = %(run)s AND part.contract_id > staged.contract_id
                            ORDER BY part.contract_id LIMIT 1)
                     FROM staged WHERE staged.contract_id IS NOT NULL
               )
               SELECT contract_id FROM staged WHERE contract_id IS NOT NULL
                UNION SELECT contract_id FROM iot_billing_run_line WHERE run_id = %(run)s""",
            {"run": self.id},
        )
        return [row[0] for row in self.env.cr.fetchall()]

    def _iot_staged_schedule_count(self):
        contract_ids = self._iot_contracts_in_steps()
        if not contract_ids:
            return 0
        return self.env["iot.invoicing.schedule"].search_count(
            [("state", "=", "billing"), ("company_id", "=", self.company_id.id), ("contract_id", "in", contract_ids)]
        )

    def _iot_bill_step(self, contract, started):
        """Do the next step of a contract billed in steps, claimed shared by this transaction.

        Slices (stages, links) go in parallel: each worker locks the schedules of its own
        slice. The invoice and the posting need the contract alone: taken only when no
        slice is under way. A step that finds the contract's state changed since its
        snapshot meets a serialization failure on the rows it locks, and starts again.
        """
        totals = {"schedules": 0, "skipped": 0, "invoices": 0}
        errors = []
        lines = self.env["iot.billing.run.line"].search([("run_id", "=", self.id), ("contract_id", "=", contract.id)])
        due = self._iot_lock_slice(
            self._iot_remaining_domain() + [("contract_id", "=", contract.id)], self._iot_chunk_size()[1]
        )
        unbilled = lines.filtered(lambda line: not line.move_id)
        if not due and not unbilled:
            linked = self._iot_link_staged(contract, totals)
            if linked is None:
                return "held"  # every slice left is another worker's
            if linked:
                self._iot_log_chunk(0, totals, 0, started)
                return "billed"
        elif not due and self._iot_has_planned_slices(contract):
            return "held"  # the last stages are another worker's
        if not due and not self._iot_claim_contracts(contract.ids, 1):
            return "held"  # a slice is under way: the invoice and the posting wait for the contract alone
        try:
            with self.env.cr.savepoint():
                if due:
                    self._iot_stage(contract, due)
                elif unbilled:
                    totals["invoices"] += len(self._iot_invoice_staged(contract, lines))
                else:
                    self._iot_post_staged(contract, lines)
        except Exception as error:  # noqa: BLE001 - any error of one contract is recorded
            if isinstance(error, psycopg2.Error) and error.pgcode in CONCURRENT_UPDATE:
                raise  # another transaction changed its rows: the step starts again
            self.env.invalidate_all()
            _logger.warning("Billing run %s: contract %s failed: %s", self.id, contract.id, error)
            # Undone with the contract alone: another worker's slice under way would stay staged.
            if not self._iot_claim_contracts(contract.ids, 1):
                return "held"
            if lines.move_id:
                # Complete and linked, the invoice waits in draft for the accountant.
                message = self.env._("Its invoice is left in draft, not posted: %(error)s", error=error)
                self._iot_delete_staged(contract)
            else:
                message = str(error)
                self._iot_unstage(contract)
            errors.append({
                "run_id": self.id,
                "contract_id": contract.id,
                "schedule_count": self.env["iot.invoicing.schedule"].search_count(
                    self._due_schedule_domain() + [("contract_id", "=", contract.id)]
                ),
                "message": message,
            })
            self.env["iot.billing.run.error"].create(errors)
        finished = contract.id not in self._iot_contracts_in_steps()
        self._iot_log_chunk(1 if finished else 0, totals, len(errors), started)
        return "billed"

    def _iot_lock_slice(self, domain, limit):
        """Ids of up to ``limit`` schedules of ``domain`` (by id) that no other transaction holds, locked."""
        Schedule = self.env["iot.invoicing.schedule"]
        Schedule.flush_model()
        query = Schedule._search(domain, order="id", limit=limit)
        selection = query.select(SQL.identifier(Schedule._table, "id"))
        self.env.cr.execute(SQL("%s FOR UPDATE OF iot_invoicing_schedule SKIP LOCKED", selection), log_exceptions=False)
        return [row[0] for row in self.env.cr.fetchall()]

    def _iot_has_planned_slices(self, contract):
        """Whether due schedules of the contract remain, held by other transactions."""
        return bool(
            self.env["iot.invoicing.schedule"].search_count(
                self._iot_remaining_domain() + [("contract_id", "=", contract.id)], limit=1
            )
        )

    def _iot_stage(self, contract, schedule_ids):
        """Step 1: value a slice of the contract's due schedules (locked) and store their parts."""
        contract._iot_check_price_precision()
        schedules = self.env["iot.invoicing.schedule"].browse(schedule_ids)
        schedules._iot_value_usage(self)
        parts = schedules._iot_invoice_line_parts()
        keys = [repr(key) for key in contract._iot_line_keys(parts)] if parts else []
        cr = self.env.cr
        cr.execute("SELECT id, invoice_date FROM iot_invoicing_schedule WHERE id = ANY(%s)", [schedules.ids])
        invoice_dates = dict(cr.fetchall())
        self.env["iot.billing.run.line"].flush_model()
        line_keys = sorted({(invoice_dates[part["schedule_id"]], key) for part, key in zip(parts, keys, strict=True)})
        cr.execute(
            """INSERT INTO iot_billing_run_line (run_id, company_id, contract_id, invoice_date, key)
               SELECT %s, %s, %s, row.invoice_date, row.key
                 FROM unnest(%s::date[], %s::varchar[]) AS row(invoice_date, key)
               ON CONFLICT (run_id, contract_id, invoice_date, key) DO NOTHING""",
            [self.id, self.company_id.id, contract.id, [day for day, _k in line_keys], [k for _d, k in line_keys]],
            # Two workers' first slices may add the same line: the later one starts again (expected).
            log_exceptions=False,
        )
        cr.execute(
            "SELECT invoice_date, key, id FROM iot_billing_run_line WHERE run_id = %s AND contract_id = %s",
            [self.id, contract.id],
        )
        line_ids = {(day, key): line_id for day, key, line_id in cr.fetchall()}
        rows = []
        for part, key in zip(parts, keys, strict=True):
            schedule_id = part["schedule_id"]
            rows.append((
                schedule_id, line_ids[invoice_dates[schedule_id], key], part["kind"], part.get("valuation_id"),
                to_decimal(part["quantity"]), to_decimal(part["price_unit"]), to_decimal(part["amount"]),
            ))
        # A schedule with nothing to bill is closed with its period: a row without line.
        billed = {part["schedule_id"] for part in parts}
        rows += [(sid, None, None, None, None, None, None) for sid in schedules.ids if sid not in billed]
        columns = list(zip(*rows, strict=True))
        cr.execute(
            """INSERT INTO iot_billing_run_part (
                   run_id, company_id, contract_id, invoice_date, schedule_id, line_id, kind, valuation_id,
                   device_id, date_from, date_to, quantity, price_unit, amount)
               SELECT %s, %s, %s, schedule.invoice_date, schedule.id, row.line_id, row.kind, row.valuation_id,
                      schedule.device_id, schedule.date_from, schedule.date_to, row.quantity, row.price_unit,
                      row.amount
                 FROM unnest(%s::int[], %s::int[], %s::varchar[], %s::int[], %s::numeric[], %s::numeric[],
                             %s::numeric[]) WITH ORDINALITY
                      AS row(schedule_id, line_id, kind, valuation_id, quantity, price_unit, amount, position)
                 JOIN iot_invoicing_schedule schedule ON schedule.id = row.schedule_id
                ORDER BY row.position""",
            [self.id, self.company_id.id, contract.id, *[list(column) for column in columns]],
        )
        schedules.flush_recordset()
        cr.execute("UPDATE iot_invoicing_schedule SET state = 'billing' WHERE id = ANY(%s)", [schedules.ids])
        schedules.invalidate_recordset(["state"])

    def _iot_invoice_staged(self, contract, lines):
        """Step 2: the contract's invoices (draft), one per invoice date, from the parts' sums."""
        cr = self.env.cr
        # The stages have just changed the state of up to millions of rows: fresh statistics
        # keep the planner on the indexes for the links that follow.
        cr.execute("ANALYZE iot_invoicing_schedule, iot_billing_run_part")
        cr.execute(
            """SELECT line_id, count(*), sum(amount)::text, sum(quantity)::text, min(price_unit)::text,
                      max(price_unit)::text, min(date_from), max(date_to),
                      count(DISTINCT (date_from, date_to)),
                      count(DISTINCT device_id) + count(DISTINCT schedule_id) FILTER (WHERE device_id IS NULL),
                      min(schedule_id)
                 FROM iot_billing_run_part
                WHERE run_id = %s AND contract_id = %s AND line_id IS NOT NULL
                GROUP BY line_id""",
            [self.id, contract.id],
        )
        sums = {row[0]: row[1:] for row in cr.fetchall()}
        # Each line's first member, as billed at once: its first schedule's part (parts of one
        # schedule are staged in their order, whatever worker staged which slice).
        cr.execute(
            """SELECT DISTINCT ON (line_id) line_id, schedule_id, kind, valuation_id, id FROM iot_billing_run_part
                WHERE run_id = %s AND contract_id = %s AND line_id IS NOT NULL
                ORDER BY line_id, schedule_id, id""",
            [self.id, contract.id],
        )
        first_rows = {row[0]: row[1:] for row in cr.fetchall()}
        first_schedules = self.env["iot.invoicing.schedule"].browse({row[0] for row in first_rows.values()})
        # The first member's part, with its label, as the schedule's parts give it.
        parts = {
            (part["schedule_id"], part["kind"], part.get("valuation_id")): part
            for part in first_schedules._iot_invoice_line_parts()
        }
        info = contract._iot_schedule_group_info(first_schedules)
        by_date = {}
        for line in lines.filtered(lambda line: line.id in sums):
            count, amount, quantity, price_min, price_max, date_from, date_to, periods, devices, first_schedule = (
                sums[line.id]
            )
            schedule_id, kind, valuation_id, first_part = first_rows[line.id]
            summary = {
                "first": parts[schedule_id, kind, valuation_id],
                "info": info[schedule_id],
                "count": count,
                "amount": Decimal(amount),
                "quantity": Decimal(quantity),
                "prices": {Decimal(price_min), Decimal(price_max)},
                "date_from": date_from,
                "date_to": date_to,
                "period": (date_from, date_to) if periods == 1 else None,
                "devices": devices,
            }
            # The order of a contract billed at once: fees first, then usage, by first member.
            order = (kind != "fixed", first_schedule, first_part)
            by_date.setdefault(line.invoice_date, []).append((order, line, summary))
        move_vals_list, staged_lines = [], []
        for invoice_date, entries in sorted(by_date.items()):
            entries.sort(key=lambda entry: entry[0])
            vals_list = [contract._iot_summary_line_vals(summary) for _order, _line, summary in entries]
            vals_list += contract._iot_extra_invoice_lines(invoice_date)
            move_vals = contract._iot_prepare_invoice_vals(invoice_date)
            move_vals["iot_billing_run_id"] = self.id
            move_vals["invoice_line_ids"] = [Command.create(vals) for vals in vals_list]
            move_vals_list.append(move_vals)
            staged_lines.append([line for _order, line, _summary in entries])
        invoices = self.env["account.move"].create(move_vals_list)
        for invoice, invoice_lines in zip(invoices, staged_lines, strict=True):
            product_lines = invoice.invoice_line_ids.filtered(lambda line: line.display_type == "product")
            for staged, move_line in zip(invoice_lines, product_lines.sorted("id"), strict=False):
                staged.write({"move_id": invoice.id, "move_line_id": move_line.id})
        return invoices

    def _iot_link_staged(self, contract, totals):
        """Step 3: a slice of the staged schedules becomes invoiced, its parts linked to their
        invoice lines. Returns False once none is left, None if what is left is held elsewhere."""
        cr = self.env.cr
        self.env["iot.billing.run.part"].flush_model()
        self.env["iot.invoicing.schedule"].flush_model(["state"])
        # The next schedules in the parts' index order (a plan that does not depend on statistics
        # the run itself has just made stale), a few slices' worth: other workers lock theirs.
        limit = self._iot_chunk_size()[1]
        cr.execute(
            """SELECT schedule_id FROM iot_billing_run_part WHERE run_id = %s AND contract_id = %s
                GROUP BY schedule_id ORDER BY schedule_id LIMIT %s""",
            [self.id, contract.id, 4 * limit],
        )
        candidates = [row[0] for row in cr.fetchall()]
        if not candidates:
            return False
        cr.execute(
            """SELECT id FROM iot_invoicing_schedule WHERE id = ANY(%s) AND state = 'billing'
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED""",
            [candidates, limit],
            log_exceptions=False,
        )
        schedule_ids = [row[0] for row in cr.fetchall()]
        if not schedule_ids:
            return None
        cr.execute(
            """SELECT part.schedule_id, part.kind, part.valuation_id, line.move_line_id,
                      (SELECT invoice.move_id FROM iot_billing_run_line invoice
                        WHERE invoice.run_id = part.run_id AND invoice.contract_id = part.contract_id
                          AND invoice.invoice_date = part.invoice_date LIMIT 1)
                 FROM iot_billing_run_part part
                 LEFT JOIN iot_billing_run_line line ON line.id = part.line_id
                WHERE part.run_id = %s AND part.contract_id = %s AND part.schedule_id = ANY(%s)
                ORDER BY part.id""",
            [self.id, contract.id, schedule_ids],
        )
        by_move, by_line = {}, {}
        for schedule_id, kind, valuation_id, move_line_id, move_id in cr.fetchall():
            by_move.setdefault(move_id, set()).add(schedule_id)
            if kind:
                part = {"schedule_id": schedule_id, "kind": kind, "valuation_id": valuation_id}
                by_line.setdefault(move_line_id, []).append(part)
        Schedule = self.env["iot.invoicing.schedule"]
        for move_id, ids in by_move.items():
            Schedule.browse(sorted(ids)).write({"state": "invoiced", "invoice_id": move_id})
        Schedule.browse(schedule_ids)._iot_link_invoice_lines(list(by_line.items()))
        self.env["iot.billing.run.part"].flush_model()
        cr.execute(
            "DELETE FROM iot_billing_run_part WHERE run_id = %s AND contract_id = %s AND schedule_id = ANY(%s)",
            [self.id, contract.id, schedule_ids],
        )
        totals["schedules"] += len(schedule_ids)
        return True

    def _iot_post_staged(self, contract, lines):
        """Step 4: the complete invoices are posted, as the contract says; the lines go."""
        invoices = lines.move_id
        self._iot_delete_staged(contract)
        if contract.auto_post:
            invoices.action_post()

    def _iot_delete_staged(self, contract):
        self.env["iot.billing.run.line"].flush_model()
        self.env["iot.billing.run.part"].flush_model()
        # A worker whose snapshot predates another's posting meets a serialization failure here
        # and starts again (expected, not logged).
        for table in ("iot_billing_run_part", "iot_billing_run_line"):
            self.env.cr.execute(
                SQL("DELETE FROM %s WHERE run_id = %s AND contract_id = %s", SQL.identifier(table), self.id,
                    contract.id),
                log_exceptions=False,
            )
        self.env["iot.billing.run.line"].invalidate_model()

    def _iot_unstage(self, contract):
        """A contract that failed before its invoice: its staged schedules are due again."""
        self.env["iot.invoicing.schedule"].flush_model(["state"])
        self.env.cr.execute(
            """UPDATE iot_invoicing_schedule SET state = 'planned'
                WHERE id IN (SELECT schedule_id FROM iot_billing_run_part WHERE run_id = %s AND contract_id = %s)""",
            [self.id, contract.id],
        )
        self.env["iot.invoicing.schedule"].invalidate_model(["state"])
        self._iot_delete_staged(contract)

    # ------------------------------------------------------------------
    # Invoicing a chunk's contracts
    # ------------------------------------------------------------------
    def _bill_contracts(self, chunk, totals):
        """Invoice several contracts in one savepoint; False (nothing kept) if any fails.

        A fleet of small contracts costs one account.move create and post per batch
        instead of per contract; on failure the caller bills them one by one, so a
        failing contract is still isolated and recorded.
        """
        schedule_ids = [schedule_id for _contract, ids in chunk for schedule_id in ids]
        try:
            with self.env.cr.savepoint():
                schedules = self.env["iot.invoicing.schedule"]._iot_lock_planned(schedule_ids)
                contracts = schedules.contract_id
                invoices = contracts._iot_invoice_schedules(schedules, self) if schedules else []
        except Exception:  # noqa: BLE001 - any failure: the contracts are retried one by one
            self.env.invalidate_all()
            return False
        totals["skipped"] += len(schedule_ids) - len(schedules)
        totals["schedules"] += len(schedules)
        totals["invoices"] += len(invoices)
        return True

    def _bill_contract(self, contract, schedule_ids, totals, errors):
        """Invoice one contract in a savepoint: its failure is recorded, the run goes on."""
        try:
            with self.env.cr.savepoint():
                schedules = self.env["iot.invoicing.schedule"]._iot_lock_planned(schedule_ids)
                invoices = contract._iot_invoice_schedules(schedules, self) if schedules else []
        except Exception as error:  # noqa: BLE001 - any error of one contract is recorded
            self.env.invalidate_all()
            if isinstance(error, psycopg2.Error) and error.pgcode in CONCURRENT_UPDATE:
                # Another run invoiced or holds them: nothing lost, nothing billed twice.
                totals["skipped"] += len(schedule_ids)
                return
            _logger.warning("Billing run %s: contract %s failed: %s", self.id, contract.id, error)
            errors.append(
                {
                    "run_id": self.id,
                    "contract_id": contract.id,
                    "schedule_count": len(schedule_ids),
                    "message": str(error),
                }
            )
        else:
            totals["skipped"] += len(schedule_ids) - len(schedules)
            totals["schedules"] += len(schedules)
            totals["invoices"] += len(invoices)
