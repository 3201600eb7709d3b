from dateutil.relativedelta import relativedelta

from odoo import api, fields, models


class IotContract(models.Model):
    """The seed's transaction account: due periods below the contract's invoicing level are not
    invoiced; they are held (still planned, due again at the contract's next invoice date) and
    invoiced with later periods once the held total reaches the level, the longest hold is
    reached or the contract has no later period."""

    _inherit = "iot.contract"

    invoice_threshold_source = fields.Selection(
        [("default", "Plan or Company"), ("contract", "This Contract")],
        string="Invoicing Level From",
        required=True,
        default="default",
        help="Plan or Company: the highest level of the plans being invoiced, else the company's. "
        "This Contract: the level and longest hold set here.",
    )
    invoice_threshold = fields.Monetary(
        string="Invoicing Level",
        help="Due periods whose untaxed total is below this amount are held and invoiced with later "
        "periods; exactly at the level invoices. 0: every period is invoiced.",
    )
    invoice_hold_months = fields.Integer(
        string="Longest Hold (months)",
        default=12,
        help="A held period is invoiced at the latest this many months after it was due, whatever its "
        "amount. 0: no limit.",
    )
    invoice_level = fields.Monetary(
        string="Current Invoicing Level",
        compute="_compute_invoice_level",
        help="The level that applies today to the contract's running plans, in its currency.",
    )
    invoice_level_hold_months = fields.Integer(string="Current Longest Hold", compute="_compute_invoice_level")
    held_amount = fields.Monetary(
        compute="_compute_held",
        help="Untaxed total of the periods held below the invoicing level (fees and usage valued "
        "when they were held).",
    )
    held_since = fields.Date(compute="_compute_held", help="When the oldest held period was due.")
    held_schedule_count = fields.Integer(compute="_compute_held")

    _sql_constraints = [
        ("invoice_threshold_positive", "CHECK(invoice_threshold >= 0)", "The invoicing level cannot be negative."),
        ("invoice_hold_months_positive", "CHECK(invoice_hold_months >= 0)", "The longest hold cannot be negative."),
    ]

    @api.depends("invoice_threshold_source", "invoice_threshold", "invoice_hold_months", "company_id", "currency_id")
    def _compute_invoice_level(self):
        today = fields.Date.context_today(self)
        running = self.env["iot.contract.item"]._read_group(
            [("contract_id", "in", self.ids), ("state", "!=", "terminated")], ["contract_id"], ["product_id:recordset"]
        )
        plans = {contract: products for contract, products in running}
        for contract in self:
            contract.invoice_level, contract.invoice_level_hold_months = contract._iot_invoicing_level(
                plans.get(contract, self.env["product.product"]), today
            )

    def _compute_held(self):
        groups = self.env["iot.invoicing.schedule"]._read_group(
            [("contract_id", "in", self.ids), ("state", "=", "planned"), ("iot_hold_from", "!=", False)],
            ["contract_id"],
            ["amount_total:sum", "iot_hold_from:min", "__count"],
        )
        held = {contract: (amount, since, count) for contract, amount, since, count in groups}
        for contract in self:
            amount, since, count = held.get(contract, (0.0, False, 0))
            contract.held_amount, contract.held_since, contract.held_schedule_count = amount, since, count

    def action_view_held_schedules(self):
        return self._action_view(
            "iot_contract.iot_invoicing_schedule_action",
            [("contract_id", "=", self.id), ("state", "=", "planned"), ("iot_hold_from", "!=", False)],
        )

    def _iot_invoicing_level(self, plans, date):
        """(level, longest hold in months) of the contract for periods of ``plans`` due at ``date``;
        the level in the contract's currency (a plan's or the company's converted at ``date``)."""
        self.ensure_one()
        if self.invoice_threshold_source == "contract":
            return self.invoice_threshold, self.invoice_hold_months
        company = self.company_id
        templates = plans.product_tmpl_id.filtered(lambda template: template.iot_invoice_threshold > 0)
        if templates:
            level = max(
                template.currency_id._convert(template.iot_invoice_threshold, self.currency_id, company, date)
                for template in templates
            )
            holds = [template.iot_invoice_hold_months for template in templates if template.iot_invoice_hold_months]
            return level, min(holds) if holds else company.iot_invoice_hold_months
        level = company.iot_invoice_threshold
        if level:
            level = company.currency_id._convert(level, self.currency_id, company, date)
        return level, company.iot_invoice_hold_months

    def _iot_next_invoice_date(self, after):
        """The contract's next invoice date after ``after``: of a period not held, or None."""
        self.ensure_one()
        [(next_date,)] = self.env["iot.invoicing.schedule"]._read_group(
            [
                ("contract_id", "=", self.id),
                ("state", "=", "planned"),
                ("invoice_date", ">", after),
                ("iot_hold_from", "=", False),
            ],
            [],
            ["invoice_date:min"],
        )
        return next_date or None

    def _iot_invoice_periods(self, schedules, parts_by_schedule, run):
        invoices = super()._iot_invoice_periods(schedules, parts_by_schedule, run)
        level, hold_months = self._iot_invoicing_level(schedules.product_id, run.date)
        billable = schedules.filtered(lambda schedule: parts_by_schedule.get(schedule.id))
        currency = self.currency_id
        if not billable or currency.compare_amounts(level, 0.0) <= 0:
            return invoices
        total = currency.round(sum(float(part["amount"]) for s in billable.ids for part in parts_by_schedule[s]))
        due_from = {schedule: schedule.iot_hold_from or schedule.invoice_date for schedule in schedules}
        held_from = min(due_from[schedule] for schedule in billable)
        deadline = held_from + relativedelta(months=hold_months) if hold_months else None
        next_date = self._iot_next_invoice_date(run.date)
        if (
            currency.compare_amounts(total, level) >= 0
            or currency.compare_amounts(total, 0.0) < 0  # a credit is never held
            or next_date is None  # no later period: the contract ends
            or (deadline and deadline <= run.date)
        ):
            # One invoice of every period, dated the latest; each period keeps its own lines.
            periods = schedules.grouped(lambda schedule: due_from[schedule])
            return [(max(schedules.mapped("invoice_date")), [periods[day] for day in sorted(periods)])]
        # Held: due again at the next invoice date (or at the longest hold, if sooner).
        for day, held in billable.grouped(lambda schedule: due_from[schedule]).items():
            held.write({
                "iot_hold_from": day,
                "iot_hold_run_id": run.id,
                "invoice_date": min(next_date, deadline) if deadline else next_date,
            })
        nothing_to_bill = schedules - billable
        return [(nothing_to_bill[:1].invoice_date, [nothing_to_bill])] if nothing_to_bill else []
