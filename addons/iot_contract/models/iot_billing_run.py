from odoo import api, fields, models
from odoo.addons.iot_device.tools import ApiInputError
from odoo.exceptions import UserError, ValidationError

from ..tools import claim_rows, try_lock_for_billing


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
            self.env["iot.billing.engine"]._drive_runs()

    @api.model
    def _cron_process_runs(self):
        """Chunk workers (the crons *IoT: billing run chunks*): bill chunks of running runs."""
        self.env["iot.billing.engine"]._drive_runs()

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
    # Life of a run (the work itself: iot.billing.engine)
    # ------------------------------------------------------------------
    def _iot_remaining_domain(self):
        """Due schedules this run still has to bill: not those of contracts that failed in it."""
        self.ensure_one()
        failed = self.env["iot.billing.run.error"].search([("run_id", "=", self.id)]).contract_id
        domain = self._due_schedule_domain()
        if failed:
            domain = [("contract_id", "not in", failed.ids)] + domain
        return domain

    def _iot_staged_schedule_count(self):
        contract_ids = self.env["iot.billing.run.part"]._contracts_in_steps(self)
        if not contract_ids:
            return 0
        return self.env["iot.invoicing.schedule"].search_count(
            [("state", "=", "billing"), ("company_id", "=", self.company_id.id), ("contract_id", "in", contract_ids)]
        )

    def _iot_start(self):
        """Bill a run that fits in one chunk now; queue a larger one for the chunk crons.

        A run that meets the usage valuation (the company's billing lock is taken) is
        queued as well: the crons bill it once the valuation has committed.
        """
        self.ensure_one()
        self.write({"state": "running", "date_started": fields.Datetime.now()})
        Engine = self.env["iot.billing.engine"]
        if Engine._fits_one_chunk(self) and try_lock_for_billing(self.env.cr, self.company_id.id):
            Engine._bill_now(self)
            return
        self._message_log(
            body=self.env._(
                "%(count)s due schedules: billed in the background, chunk by chunk (each committed).",
                count=self.remaining_count,
            )
        )
        Engine._trigger_workers()

    def _iot_prepare(self):
        self._iot_run_prepare()
        self.prepared = True

    def _iot_finish(self):
        self._iot_run_finish()
        self.env.invalidate_all()
        self.write({"state": "error" if self.error_ids else "done", "date_finished": fields.Datetime.now()})
        self._iot_post_result()

    def _iot_stop(self, error):
        """The run stopped on an unexpected error (a bug, not a contract's failure): visibly."""
        self.write({"state": "error", "date_finished": fields.Datetime.now()})
        self._message_log(body=self.env._("The run stopped on an error: %(error)s", error=error))

    def _iot_error_vals(self, contract, message, schedule_count):
        """Values of the ``iot.billing.run.error`` of a contract that failed in this run."""
        return {"run_id": self.id, "contract_id": contract.id, "schedule_count": schedule_count, "message": message}

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

    def _iot_lock_self(self, condition):
        """Lock this run's row if ``condition`` (``SQL``) holds: one worker prepares or finishes it."""
        self.flush_recordset()
        return bool(claim_rows(self.env.cr, self._table, self.ids, 1, where=condition))
