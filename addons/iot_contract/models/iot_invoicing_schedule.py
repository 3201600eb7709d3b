from odoo import api, fields, models
from odoo.tools import SQL, create_index
from odoo.tools.float_utils import float_compare

from ..tools import SCHEDULE_PARTS, RowLock, claim_rows, period_bounds


class IotInvoicingSchedule(models.Model):
    _name = "iot.invoicing.schedule"
    _description = "IoT Invoicing Schedule"
    _order = "date_from, contract_item_id, id"
    _rec_name = "contract_item_id"
    _check_company_auto = True

    contract_item_id = fields.Many2one(
        "iot.contract.item",
        string="Contract Item",
        required=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    contract_id = fields.Many2one(related="contract_item_id.contract_id", store=True, index=True, precompute=True)
    device_id = fields.Many2one(
        related="contract_item_id.device_id", store=True, index="btree_not_null", precompute=True
    )
    product_id = fields.Many2one(related="contract_item_id.product_id", store=True, precompute=True)
    partner_id = fields.Many2one(related="contract_item_id.contract_id.partner_id", string="Customer")
    company_id = fields.Many2one(related="contract_item_id.company_id", store=True, index=True, precompute=True)
    currency_id = fields.Many2one(related="contract_item_id.currency_id", store=True, precompute=True)
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True, help="Last day of the period (included).")
    invoice_date = fields.Date(
        required=True,
        help="When the schedule becomes due: the end of its billing period (fees in arrears) "
        "or its start (fees in advance). Schedules of a contract due on the same date are "
        "invoiced together.",
    )
    part = fields.Selection(
        SCHEDULE_PARTS,
        required=True,
        default="all",
        readonly=True,
        help="What the schedule bills: with fees in arrears, the period's fee and usage at its end; "
        "with fees in advance, the fee at the period's start and the usage, in a second schedule, "
        "at its end.",
    )
    fixed_amount = fields.Monetary(string="Fixed Fee")
    usage_quantity = fields.Float(digits=(16, 6), help="Filled when usage is valued.")
    usage_amount = fields.Monetary(help="Filled when usage is valued.")
    amount_total = fields.Monetary(string="Total", compute="_compute_amount_total", store=True)
    state = fields.Selection(
        [("planned", "Planned"), ("billing", "Being Invoiced"), ("invoiced", "Invoiced"), ("cancelled", "Cancelled")],
        required=True,
        default="planned",
        readonly=True,
        copy=False,
        help="Being Invoiced: valued by a billing run that bills its contract in steps, on the invoice the "
        "run is building; no other run, valuation or change touches it meanwhile.",
    )
    invoice_id = fields.Many2one(
        "account.move",
        string="Invoice",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="restrict",
    )
    fixed_line_id = fields.Many2one(
        "account.move.line",
        string="Fixed Fee Invoice Line",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        help="The invoice line the fixed fee was billed on.",
    )
    credit_line_id = fields.Many2one(
        "account.move.line",
        string="Credit Note Line",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        help="The credit note line that gave back the fee of the days after a termination.",
    )
    invoice_line_ids = fields.Many2many(
        "account.move.line",
        string="Invoice Lines",
        compute="_compute_invoice_line_ids",
        help="The invoice lines this schedule's fee and usage were billed on.",
    )


    _sql_constraints = [
        ("dates_ordered", "CHECK(date_from <= date_to)", "A schedule ends after it starts."),
    ]

    def init(self):
        # One schedule per item, period and part (one for the fee, one for the usage when fees
        # are billed in advance); late-usage schedules may come several times for a period.
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS iot_invoicing_schedule_item_period_uniq
                   ON iot_invoicing_schedule (contract_item_id, date_from, part) WHERE part != 'late'"""
        )
        # The billing run's query: planned schedules due by a date, per company.
        create_index(
            self.env.cr,
            "iot_invoicing_schedule_due_idx",
            self._table,
            ["state", "invoice_date", "company_id"],
        )

    @api.depends("fixed_amount", "usage_amount")
    def _compute_amount_total(self):
        for schedule in self:
            schedule.amount_total = schedule.fixed_amount + schedule.usage_amount

    @api.depends("fixed_line_id")
    def _compute_invoice_line_ids(self):
        for schedule in self:
            schedule.invoice_line_ids = schedule.fixed_line_id


    def write(self, vals):
        result = super().write(vals)
        if "state" in vals:
            self._iot_state_changed(vals["state"])
        return result

    def _iot_set_state(self, state):
        """Set-based state change of many schedules (the engine's stage and unstage of contracts
        billed in steps, 10,000 at a time): one UPDATE instead of ``write``, then the same hook."""
        self.flush_recordset(["state"])
        self.env.cr.execute(SQL("UPDATE iot_invoicing_schedule SET state = %s WHERE id = ANY(%s)", state, self.ids))
        self.invalidate_recordset(["state"])
        self._iot_state_changed(state)

    def _iot_state_changed(self, state):
        """Hook: these schedules have just taken ``state``, through ``write`` or ``_iot_set_state``
        (the one place where modules follow a schedule's state; iot_usage moves its buckets).
        Base: nothing."""
        return True

    def _iot_changes(self, vals):
        """The part of ``vals`` that differs from this planned schedule (plus re-planning)."""
        self.ensure_one()
        changes = {}
        for key, value in vals.items():
            if key == "fixed_amount":
                if float_compare(self.fixed_amount, value, precision_rounding=self.currency_id.rounding):
                    changes[key] = value
            elif self[key] != value:
                changes[key] = value
        if self.state == "cancelled":
            changes["state"] = "planned"
        return changes

    # ------------------------------------------------------------------
    # Hooks of the billing engine (see readme/USAGE.md)
    # ------------------------------------------------------------------
    def _iot_value_usage(self, run):
        """Hook 1: value the usage of these schedules before they are invoiced.

        Called by the billing run (``run``: iot.billing.run) on the locked,
        due schedules of one contract. Base: nothing to value. iot_usage fills
        ``usage_quantity`` and ``usage_amount`` here.
        """
        return True

    def _iot_invoice_line_parts(self):
        """Hook 2: the invoice line parts of these schedules, a list of dicts.

        One dict per part and schedule: ``schedule_id``, ``kind`` ("fixed" or
        "usage"), ``product_id``, ``name``, ``quantity``, ``price_unit``,
        ``amount`` (currency-rounded quantity * price_unit) and ``currency_id``.
        Base: the fixed fee of every schedule whose fee is not zero. iot_usage
        adds the usage parts.
        """
        if not self:
            return []
        # One query instead of a dozen ORM field reads per schedule: a fleet's run
        # builds one part per device, and those reads cost more than the rest.
        self.flush_model(
            ["contract_item_id", "contract_id", "product_id", "currency_id", "date_from", "date_to", "fixed_amount"]
        )
        self.env["iot.contract.item"].flush_model(["name", "billing_period", "cycle_anchor"])
        self.env.cr.execute(
            """
            SELECT schedule.id, schedule.product_id, schedule.currency_id, schedule.fixed_amount,
                   schedule.contract_id, schedule.date_from, schedule.date_to, item.name, item.billing_period,
                   item.cycle_anchor
              FROM iot_invoicing_schedule schedule
              JOIN iot_contract_item item ON item.id = schedule.contract_item_id
             WHERE schedule.id = ANY(%s)
            """,
            [self.ids],
        )
        rows = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        currencies, product_names, period_labels = {}, {}, {}
        parts = []
        for schedule_id in self.ids:
            (product_id, currency_id, fixed_amount, contract_id, date_from, date_to, item_name, billing_period,
             anchor) = rows[schedule_id]
            if currency_id not in currencies:
                currencies[currency_id] = self.env["res.currency"].browse(currency_id)
            if currencies[currency_id].is_zero(fixed_amount):
                continue
            if product_id not in product_names:
                product_names[product_id] = self.env["product.product"].browse(product_id).name
            period_key = (contract_id, date_from, date_to, billing_period, anchor)
            if period_key not in period_labels:
                # thousands of schedules share a few periods: each label is formatted once (Babel is slow)
                period_start, period_end = period_bounds(date_from, billing_period, anchor)
                period_labels[period_key] = self.env["iot.contract"].browse(contract_id)._iot_period_label(
                    date_from, date_to, period_start, period_end
                )
            parts.append(
                {
                    "schedule_id": schedule_id,
                    "kind": "fixed",
                    "product_id": product_id,
                    "name": " — ".join([item_name, product_names[product_id], period_labels[period_key]]),
                    "quantity": 1.0,
                    "price_unit": fixed_amount,
                    "amount": fixed_amount,
                    "currency_id": currency_id,
                }
            )
        return parts

    def _iot_link_invoice_lines(self, line_parts):
        """Hook 3: record which invoice line each part was billed on.

        ``line_parts``: ``[(move line id, parts billed on it)]``. Base: the fixed fees;
        iot_usage records the usage parts on their valuations. The invoice's detail
        is read back from these links.
        """
        pairs = [
            (part["schedule_id"], line_id) for line_id, parts in line_parts for part in parts if part["kind"] == "fixed"
        ]
        if not pairs:
            return
        self.flush_model(["fixed_line_id"])
        self.env.cr.execute(
            """UPDATE iot_invoicing_schedule schedule SET fixed_line_id = row.line_id
                 FROM unnest(%s::int[], %s::int[]) AS row(id, line_id)
                WHERE schedule.id = row.id""",
            ([schedule_id for schedule_id, _l in pairs], [line_id for _s, line_id in pairs]),
        )
        self.invalidate_model(["fixed_line_id"])

    def _iot_credit_parts(self, kept_vals):
        """Hook 10: ``[(invoice line, amount)]`` a termination credits of this invoiced schedule,
        ``kept_vals`` being the values of the period the item keeps (None: no day kept). Base:
        its fixed fee less the fee of the days kept, on the line that billed it."""
        self.ensure_one()
        kept = kept_vals["fixed_amount"] if kept_vals else 0.0
        return [(self.fixed_line_id, self.currency_id.round(self.fixed_amount - kept))]

    @api.model
    def _iot_insert_schedules(self, vals_list):
        """Insert planned schedules in one statement; return them.

        ``vals_list``: dicts of ``contract_item_id``, ``date_from``, ``date_to``,
        ``invoice_date``, ``fixed_amount``. Raw SQL because activating 10,000
        devices makes 120,000 schedules, and the ORM create precomputes the
        related fields row by row (docs/benchmarks.md §3-4). The related columns are copied from the (flushed) items.
        A module adding a required stored field to schedules must fill it here.
        """
        if not vals_list:
            return self.browse()
        self.env["iot.contract.item"].flush_model()
        self.env.cr.execute(
            """
            INSERT INTO iot_invoicing_schedule (
                contract_item_id, contract_id, device_id, product_id, company_id, currency_id,
                date_from, date_to, invoice_date, part, fixed_amount, usage_quantity, usage_amount,
                amount_total, state, create_uid, write_uid, create_date, write_date)
            SELECT item.id, item.contract_id, item.device_id, item.product_id, item.company_id,
                   item.currency_id, row.date_from, row.date_to, row.invoice_date, row.part,
                   row.fixed_amount, 0, 0, row.fixed_amount, 'planned',
                   %(uid)s, %(uid)s, %(now)s, %(now)s
              FROM unnest(%(item_ids)s::int[], %(dates_from)s::date[], %(dates_to)s::date[],
                          %(invoice_dates)s::date[], %(parts)s::varchar[], %(amounts)s::numeric[])
                   AS row(item_id, date_from, date_to, invoice_date, part, fixed_amount)
              JOIN iot_contract_item item ON item.id = row.item_id
            RETURNING id
            """,
            {
                "uid": self.env.uid,
                "now": fields.Datetime.now(),
                "item_ids": [vals["contract_item_id"] for vals in vals_list],
                "dates_from": [vals["date_from"] for vals in vals_list],
                "dates_to": [vals["date_to"] for vals in vals_list],
                "invoice_dates": [vals["invoice_date"] for vals in vals_list],
                "parts": [vals.get("part", "all") for vals in vals_list],
                "amounts": [vals["fixed_amount"] for vals in vals_list],
            },
        )
        schedules = self.browse([row[0] for row in self.env.cr.fetchall()])
        self.env["iot.contract.item"].invalidate_model(["schedule_ids"])
        self.env["iot_billing.device"].invalidate_model(["schedule_count"])
        return schedules

    @api.model
    def _iot_lock_planned(self, schedule_ids):
        """Lock the schedules still planned among ``schedule_ids``, skip those locked elsewhere.

        What makes billing exactly-once: a concurrent run holding some of them
        gets them, this one gets the others; once invoiced they are no longer
        planned. Under Odoo's REPEATABLE READ, a schedule another run invoiced
        and committed since this transaction began raises a serialization
        failure, which the caller treats as "taken".
        """
        self.flush_model(["state"])
        return self.browse(claim_rows(self.env.cr, self._table, schedule_ids, lock=RowLock.UPDATE,
                                      where=SQL("state = 'planned'")))

    @api.model
    def _iot_lock_slice(self, domain, limit):
        """Ids of up to ``limit`` schedules of ``domain`` (by id) no other transaction holds, now
        locked by this one: the slice of one step of a contract billed in steps."""
        self.flush_model()
        query = self._search(domain, order="id", limit=limit)
        selection = query.select(SQL.identifier(self._table, "id"))
        self.env.cr.execute(SQL("%s FOR UPDATE OF iot_invoicing_schedule SKIP LOCKED", selection), log_exceptions=False)
        return [row[0] for row in self.env.cr.fetchall()]
