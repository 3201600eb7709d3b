import logging
import time

import psycopg2
from psycopg2 import errorcodes

from odoo import api, fields, models
from odoo.addons.iot_device.tools import ApiInputError
from odoo.exceptions import UserError, ValidationError
from odoo.tools import split_every

_logger = logging.getLogger(__name__)

# Raised when a concurrent run changed (invoiced) a schedule after this
# transaction began: another run has it, this one leaves it alone.
CONCURRENT_UPDATE = (errorcodes.SERIALIZATION_FAILURE, errorcodes.LOCK_NOT_AVAILABLE)
# Contracts invoiced together (one account.move create and post); see _bill_contracts.
CONTRACTS_PER_BATCH = 50


class IotBillingRun(models.Model):
    _name = "iot.billing.run"
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
        [("draft", "Draft"), ("done", "Done"), ("error", "Done with errors")],
        required=True,
        default="draft",
        readonly=True,
        copy=False,
    )
    schedule_count = fields.Integer(string="Schedules Invoiced", readonly=True)
    skipped_count = fields.Integer(
        string="Schedules Skipped",
        readonly=True,
        help="Due schedules another billing run was invoicing at the same time.",
    )
    invoice_count = fields.Integer(string="Invoices", readonly=True)
    contract_count = fields.Integer(string="Contracts", readonly=True)
    duration = fields.Float(string="Duration (s)", readonly=True, digits=(16, 2))
    invoice_ids = fields.One2many("account.move", "iot_billing_run_id", string="Invoices Created")
    error_ids = fields.One2many("iot.billing.run.error", "run_id", string="Errors")
    error_count = fields.Integer(compute="_compute_error_count")

    @api.depends("date", "company_id")
    def _compute_name(self):
        for run in self:
            run.name = self.env._("Billing %(date)s (%(company)s)", date=run.date, company=run.company_id.name)

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

        ``date``: "YYYY-MM-DD", today when empty. Returns
        ``{"run_id", "invoice_ids", "errors": [{"contract_id", "contract", "message"}]}``.
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
        run.action_run()
        return {
            "run_id": run.id,
            "invoice_ids": run.invoice_ids.ids,
            "errors": [
                {
                    "contract_id": error.contract_id.id,
                    "contract": error.contract_id.reference,
                    "message": error.message,
                }
                for error in run.error_ids
            ],
        }

    @api.model
    def _cron_run_billing(self):
        """Daily: one run per company that has schedules a run of today would bill.

        A period is billed by the first run on or after its due date (the run's
        own domain: invoice date, usage grace days, contract state); the other
        days create no run.
        """
        today = fields.Date.context_today(self)
        Schedule = self.env["iot.invoicing.schedule"].sudo()
        due = Schedule._read_group([("state", "=", "planned"), ("invoice_date", "<=", today)], ["company_id"])
        for (company,) in due:
            values = {"date": today, "company_id": company.id}
            if Schedule.search_count(self.new(values)._due_schedule_domain(), limit=1):
                self.with_company(company).create(values).action_run()

    def action_run(self):
        for run in self:
            if run.state != "draft":
                raise UserError(self.env._("This billing run has already been executed."))
            run.with_company(run.company_id)._execute()
        return True

    # ------------------------------------------------------------------
    # Engine
    # ------------------------------------------------------------------
    def _due_schedule_domain(self):
        self.ensure_one()
        return [
            ("state", "=", "planned"),
            ("invoice_date", "<=", self.date),
            ("company_id", "=", self.company_id.id),
            ("contract_id.state", "!=", "draft"),
        ]

    def _execute(self):
        self.ensure_one()
        started = time.monotonic()
        Schedule = self.env["iot.invoicing.schedule"]
        groups = Schedule._read_group(self._due_schedule_domain(), ["contract_id"], ["id:array_agg"])
        totals = {"schedules": 0, "skipped": 0, "invoices": 0}
        errors = []
        for chunk in split_every(CONTRACTS_PER_BATCH, groups):
            if len(chunk) == 1 or not self._bill_contracts(chunk, totals):
                for contract, schedule_ids in chunk:
                    self._bill_contract(contract, schedule_ids, totals, errors)
        self.env["iot.billing.run.error"].create(errors)
        self.write(
            {
                "state": "error" if errors else "done",
                "schedule_count": totals["schedules"],
                "skipped_count": totals["skipped"],
                "invoice_count": totals["invoices"],
                "contract_count": len(groups),
                "duration": time.monotonic() - started,
            }
        )

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
