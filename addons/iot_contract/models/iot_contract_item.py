from collections import defaultdict
from datetime import timedelta

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from ..tools import BILL_CYCLES, BILLING_PERIODS, item_date_end, overlap_days, period_bounds, prorate, split_periods

# Writing one of these fields re-plans the item's schedules (never the invoiced ones).
SCHEDULE_FIELDS = {
    "date_start", "date_end", "duration_months", "price_unit", "billing_period", "bill_cycle", "cycle_anchor",
}
# Once a period is invoiced, these fields would move periods already billed: refused.
CYCLE_FIELDS = {"billing_period", "bill_cycle", "cycle_anchor"}
# From this many items, the company consistency check is one query (see _check_company).
BULK_COMPANY_CHECK = 100
BULK_CHECKED_FIELDS = {"contract_id", "device_id", "product_id"}
# Items renewed or ended per call of the end-of-term cron (it is called again for the rest).
END_OF_TERM_BATCH = 1000


class IotContractItem(models.Model):
    _name = "iot.contract.item"
    _description = "IoT Contract Item"
    _order = "contract_id, name, id"
    _check_company_auto = True

    name = fields.Char(
        compute="_compute_name",
        store=True,
        readonly=False,
        required=True,
        index="trigram",
        precompute=True,
    )
    contract_id = fields.Many2one("iot.contract", required=True, index=True, ondelete="restrict", check_company=True)
    partner_id = fields.Many2one(related="contract_id.partner_id", store=True, string="Customer")
    company_id = fields.Many2one(related="contract_id.company_id", store=True, index=True, precompute=True)
    currency_id = fields.Many2one(related="contract_id.currency_id", store=True, precompute=True)
    device_id = fields.Many2one(
        "iot_billing.device",
        index="btree_not_null",
        ondelete="restrict",
        check_company=True,
        help="Empty for a plain subscription.",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Plan",
        required=True,
        check_company=True,
        domain="[('type', '=', 'service')]",
    )
    date_start = fields.Date(required=True, default=fields.Date.context_today)
    duration_months = fields.Integer(
        string="Duration (months)",
        compute="_compute_duration_months",
        store=True,
        readonly=False,
        precompute=True,
    )
    date_end = fields.Date(
        compute="_compute_date_end",
        store=True,
        readonly=False,
        required=True,
        precompute=True,
        help="Last day billed (included).",
    )
    price_unit = fields.Monetary(
        string="Fixed Price",
        compute="_compute_price_unit",
        store=True,
        readonly=False,
        precompute=True,
        help="Fixed fee of one full billing period; from the plan by default.",
    )
    billing_period = fields.Selection(
        BILLING_PERIODS,
        compute="_compute_billing_period",
        store=True,
        readonly=False,
        precompute=True,
        required=True,
    )
    bill_cycle = fields.Selection(
        BILL_CYCLES,
        string="Bill Cycle",
        compute="_compute_bill_cycle",
        store=True,
        readonly=False,
        precompute=True,
        required=True,
    )
    cycle_anchor = fields.Date(
        compute="_compute_cycle_anchor",
        store=True,
        readonly=False,
        precompute=True,
        help="Anniversary cycle: the day its periods count from (the item's start; kept by a plan "
        "change). A period starts on this day of the month, or on the month's last day when the "
        "month is shorter. Empty on the calendar cycle.",
    )
    state = fields.Selection(
        [("running", "Running"), ("suspended", "Suspended"), ("terminated", "Terminated")],
        required=True,
        default="running",
        readonly=True,
        copy=False,
        index=True,
    )
    schedule_ids = fields.One2many("iot.invoicing.schedule", "contract_item_id", string="Schedules")
    suspension_ids = fields.One2many("iot.contract.item.suspension", "item_id", string="Suspensions")
    schedule_count = fields.Integer(compute="_compute_schedule_count")

    def _check_company(self, fnames=None):
        """Odoo's check runs filtered_domain per item and field: a minute for a large fleet.

        For a large batch the same rule (the device is the item's company's, the plan
        is shared or the item's company's) is one query; only offending items, if
        any, go through Odoo's check, which raises its usual message.
        """
        if len(self) < BULK_COMPANY_CHECK or (fnames is not None and not set(fnames) <= BULK_CHECKED_FIELDS):
            return super()._check_company(fnames)
        # execute_query flushes exactly the columns named by _field_to_sql, other models' included.
        rows = self.env.execute_query(
            SQL(
                """
                SELECT item.id
                  FROM iot_contract_item item
                  LEFT JOIN iot_billing_device device ON device.id = %(item_device)s
                  JOIN product_product product ON product.id = %(item_product)s
                  JOIN product_template template ON template.id = %(product_template)s
                 WHERE item.id = ANY(%(ids)s)
                   AND (%(device_company)s <> %(item_company)s
                        OR (%(template_company)s IS NOT NULL AND %(template_company)s <> %(item_company)s))
                """,
                item_device=self._field_to_sql("item", "device_id"),
                item_product=self._field_to_sql("item", "product_id"),
                item_company=self._field_to_sql("item", "company_id"),
                product_template=self.env["product.product"]._field_to_sql("product", "product_tmpl_id"),
                device_company=self.env["iot_billing.device"]._field_to_sql("device", "company_id"),
                template_company=self.env["product.template"]._field_to_sql("template", "company_id"),
                ids=self.ids,
            )
        )
        offending = self.browse([row[0] for row in rows])
        return super(IotContractItem, offending)._check_company(fnames) if offending else None

    @api.depends("device_id")
    def _compute_name(self):
        for item in self:
            if item.device_id:
                item.name = item.device_id.name
            elif not item.name:
                item.name = item.product_id.display_name

    @api.depends("product_id")
    def _compute_duration_months(self):
        for item in self:
            item.duration_months = item.product_id.iot_duration_months or 12

    @api.depends("date_start", "duration_months")
    def _compute_date_end(self):
        for item in self:
            if item.date_start and item.duration_months > 0:
                item.date_end = item_date_end(item.date_start, item.duration_months)

    @api.depends("product_id", "contract_id.currency_id", "contract_id.fiscal_position_id")
    def _compute_price_unit(self):
        """The plan's sales price as Odoo prices a manual invoice line of it: adapted when the
        contract's fiscal position maps a price-included tax to another tax, converted into the
        contract's currency at the item's start, rounded in that currency."""
        for item in self:
            product = item.product_id
            if not product:
                item.price_unit = 0.0
                continue
            contract = item.contract_id
            company = contract.company_id or self.env.company
            currency = contract.currency_id or product.currency_id
            price = product.with_company(company)._get_tax_included_unit_price(
                company,
                currency,
                item.date_start or fields.Date.context_today(self),
                "sale",
                fiscal_position=contract.fiscal_position_id,
            )
            item.price_unit = currency.round(price)

    @api.depends("product_id", "contract_id.billing_period")
    def _compute_billing_period(self):
        for item in self:
            if item.product_id.iot_is_plan:
                item.billing_period = item.product_id.iot_billing_period
            else:
                item.billing_period = item.contract_id.billing_period or "monthly"

    @api.depends("product_id")
    def _compute_bill_cycle(self):
        for item in self:
            item.bill_cycle = self._iot_cycle_of(item.contract_id, item.product_id)

    @api.model
    def _iot_cycle_of(self, contract, plan):
        """The bill cycle of an item of ``plan`` put on ``contract`` now: the contract's, else the plan's."""
        if contract.bill_cycle in ("calendar", "anniversary"):
            return contract.bill_cycle
        return plan.iot_bill_cycle if plan.iot_is_plan else "calendar"

    @api.depends("bill_cycle", "date_start")
    def _compute_cycle_anchor(self):
        for item in self:
            item.cycle_anchor = item.date_start if item.bill_cycle == "anniversary" else False

    def _compute_schedule_count(self):
        counts = dict(
            self.env["iot.invoicing.schedule"]._read_group(
                [("contract_item_id", "in", self.ids)], ["contract_item_id"], ["__count"]
            )
        )
        for item in self:
            item.schedule_count = counts.get(item, 0)

    def init(self):
        # One open item per device: enforced by the database so that two
        # concurrent activations of the same device cannot both succeed.
        self.env.cr.execute(
            """CREATE UNIQUE INDEX IF NOT EXISTS iot_contract_item_open_device_uniq
                   ON iot_contract_item (device_id)
                WHERE device_id IS NOT NULL AND state != 'terminated'"""
        )

    @api.constrains("date_start", "date_end", "state")
    def _check_dates(self):
        for item in self:
            if item.state != "terminated" and item.date_end < item.date_start:
                raise ValidationError(self.env._("%(item)s ends before it starts.", item=item.display_name))

    @api.model
    def _check_devices_free(self, device_ids):
        """Refuse a second open item for a device before the unique index does, with a clear message."""
        if len(set(device_ids)) < len(device_ids):
            raise ValidationError(self.env._("A device appears twice among the new items."))
        taken = self.search([("device_id", "in", device_ids), ("state", "!=", "terminated")], limit=1)
        if taken:
            raise ValidationError(
                self.env._(
                    "Device %(device)s already has a running contract item.",
                    device=taken.device_id.display_name,
                )
            )

    @api.constrains("device_id", "state")
    def _check_one_open_item_per_device(self):
        open_items = self.filtered(lambda item: item.device_id and item.state != "terminated")
        if not open_items:
            return
        duplicates = self._read_group(
            [("device_id", "in", open_items.device_id.ids), ("state", "!=", "terminated")],
            ["device_id"],
            having=[("__count", ">", 1)],
        )
        if duplicates:
            raise ValidationError(
                self.env._(
                    "Device %(device)s already has a running contract item.",
                    device=duplicates[0][0].display_name,
                )
            )

    @api.model_create_multi
    def create(self, vals_list):
        self._check_devices_free([vals["device_id"] for vals in vals_list if vals.get("device_id")])
        items = super().create(vals_list)
        items._iot_start_devices()
        items.contract_id.action_start()
        items._sync_schedules()
        return items

    def write(self, vals):
        if CYCLE_FIELDS & vals.keys():
            self._check_cycle_change(vals)
        result = super().write(vals)
        if SCHEDULE_FIELDS & vals.keys():
            self._sync_schedules()
        return result

    def _check_cycle_change(self, vals):
        """Refuse to move the periods of items already invoiced: new periods would overlap the
        invoiced ones and leave days unbilled."""

        def differs(item):
            return any(
                (item[name] or False) != (fields.Date.to_date(vals[name]) if name == "cycle_anchor" else vals[name])
                for name in CYCLE_FIELDS & vals.keys()
            )

        changed = self.filtered(differs)
        invoiced = self.env["iot.invoicing.schedule"].search(
            [("contract_item_id", "in", changed.ids), ("state", "in", ("invoiced", "billing"))], limit=1
        )
        if invoiced:
            raise UserError(
                self.env._(
                    "%(item)s has invoiced periods: its billing period and bill cycle can no longer "
                    "change (change its plan from a date instead).",
                    item=invoiced.contract_item_id.display_name,
                )
            )

    @api.ondelete(at_uninstall=False)
    def _unlink_except_invoiced(self):
        if self.env["iot.invoicing.schedule"].search_count(
            [("contract_item_id", "in", self.ids), ("state", "=", "invoiced")], limit=1
        ):
            raise UserError(self.env._("An item with invoiced schedules cannot be deleted; terminate it."))

    # ------------------------------------------------------------------
    # Devices
    # ------------------------------------------------------------------
    def _iot_start_devices(self):
        """Activate the pending devices of new items (one event per device, naming the contract)."""
        with_device = self.filtered("device_id")
        refused = with_device.filtered(lambda item: item.device_id.state not in ("pending", "active", "suspended"))
        if refused:
            raise UserError(
                self.env._(
                    "Device %(device)s is %(state)s: only pending, active or suspended devices "
                    "can be put on a contract (confirm draft devices first).",
                    device=refused[0].device_id.display_name,
                    state=refused[0].device_id.state,
                )
            )
        pending = with_device.filtered(lambda item: item.device_id.state == "pending")
        for (contract, product), items in pending.grouped(lambda item: (item.contract_id, item.product_id)).items():
            items.device_id._apply_transition(
                "activate",
                self.env._(
                    "Activated on contract %(contract)s, plan %(plan)s",
                    contract=contract.display_name,
                    plan=product.display_name,
                ),
            )
        with_device.filtered(lambda item: item.device_id.state == "suspended").write({"state": "suspended"})
        # The device remembers its contract and plan (the wizard and API default to them).
        for (contract, product), items in with_device.grouped(lambda item: (item.contract_id, item.product_id)).items():
            items.device_id.write({"contract_id": contract.id, "plan_id": product.id})

    def _iot_terminate(self, date_end):
        """Terminate items on ``date_end`` (last day billed): later schedules are cancelled,
        the one containing ``date_end`` is prorated, invoiced ones are never touched."""
        by_end = defaultdict(lambda: self.browse())
        for item in self.filtered(lambda item: item.state != "terminated"):
            by_end[max(min(item.date_end, date_end), item.date_start - timedelta(days=1))] |= item
        for end, items in by_end.items():
            items.write({"state": "terminated", "date_end": end})
        self.browse().union(*by_end.values())._iot_credit_unused_fees()

    def _iot_credit_unused_fees(self):
        """Credit the fixed fees already invoiced for days after the items' end (billed in
        advance, or a termination dated back): ``fee invoiced - fee of the days kept``, one
        credit note per invoice, dated today. Draft invoices are not credited (edit them)."""
        candidates = self.env["iot.invoicing.schedule"].search(
            [
                ("contract_item_id", "in", self.ids),
                ("state", "=", "invoiced"),
                ("fixed_line_id.parent_state", "=", "posted"),
                ("credit_line_id", "=", False),
            ]
        )
        credits = defaultdict(list)  # invoice -> [(schedule, line credited, amount, date_from)]
        for item, schedules in candidates.grouped("contract_item_id").items():
            kept = {(vals["date_from"], vals["part"]): vals for vals in item._iot_schedule_periods()}
            for schedule in schedules:
                if schedule.date_to <= item.date_end:
                    continue
                first_unused = max(schedule.date_from, item.date_end + timedelta(days=1))
                for billed, amount in schedule._iot_credit_parts(kept.get((schedule.date_from, schedule.part))):
                    if schedule.currency_id.compare_amounts(amount, 0.0) > 0:
                        credits[schedule.invoice_id].append((schedule, billed, amount, first_unused))
        if credits:
            self._iot_create_credit_notes(credits)

    def _iot_create_credit_notes(self, credits):
        """``credits``: invoice -> [(schedule, invoice line credited, amount, first unused day)].
        Lines take the product, taxes and analytics of the invoice line they credit; the schedule
        records its credit line (its last, when it credits several lines).

        sudo: terminating is a fleet manager's act (or the API's); the credit note it implies
        follows from invoices the billing engine made, as those did.
        """
        today = fields.Date.context_today(self)
        move_vals_list, members = [], []
        for invoice, invoice_credits in credits.items():
            contract = invoice_credits[0][0].contract_id
            lines = []
            for schedule, billed, amount, date_from in invoice_credits:
                item = schedule.contract_item_id
                period_start, period_end = period_bounds(schedule.date_from, item.billing_period, item.cycle_anchor)
                label = contract._iot_period_label(date_from, schedule.date_to, period_start, period_end)
                vals = {
                    "display_type": "product",
                    "product_id": billed.product_id.id,
                    "name": self.env._(
                        "%(item)s — %(plan)s — %(period)s, not used",
                        item=schedule.contract_item_id.name,
                        plan=billed.product_id.name,
                        period=label,
                    ),
                    "quantity": 1.0,
                    "price_unit": amount,
                    "tax_ids": [Command.set(billed.tax_ids.ids)],
                    "iot_period_from": date_from,
                    "iot_period_to": schedule.date_to,
                }
                if billed.analytic_distribution:
                    vals["analytic_distribution"] = billed.analytic_distribution
                lines.append(Command.create(vals))
            move_vals_list.append(
                {
                    "move_type": "out_refund",
                    "partner_id": invoice.partner_id.id,
                    "company_id": invoice.company_id.id,
                    "currency_id": invoice.currency_id.id,
                    "journal_id": invoice.journal_id.id,
                    "invoice_date": today,
                    "fiscal_position_id": invoice.fiscal_position_id.id,
                    "reversed_entry_id": invoice.id,
                    "iot_contract_id": contract.id,
                    "invoice_origin": contract.reference,
                    "ref": self.env._("Days not used of %(invoice)s", invoice=invoice.name),
                    "invoice_line_ids": lines,
                }
            )
            members.append(invoice_credits)
        refunds = self.env["account.move"].sudo().create(move_vals_list)
        for refund, invoice_credits in zip(refunds, members, strict=True):
            for line, (schedule, _billed, _amount, _day) in refund._iot_pair_product_lines(invoice_credits):
                schedule.sudo().credit_line_id = line
        refunds.filtered(lambda refund: refund.iot_contract_id.auto_post).action_post()
        return refunds

    # ------------------------------------------------------------------
    # Plan change (wizard and API)
    # ------------------------------------------------------------------
    def _iot_plan_change_error(self, plan, date):
        """Why this item cannot move to ``plan`` on ``date``, or None."""
        self.ensure_one()
        if self.state == "terminated":
            return self.env._("item %(item)s is terminated", item=self.name)
        if plan == self.product_id:
            return self.env._("item %(item)s is already on plan %(plan)s", item=self.name, plan=plan.display_name)
        if date < self.date_start:
            return self.env._(
                "the change date %(date)s is before the item's start %(start)s", date=date, start=self.date_start
            )
        if date > self.date_end:
            return self.env._("the change date %(date)s is after the end of term %(end)s", date=date, end=self.date_end)
        return None

    def _iot_cycle_after_change(self, plan):
        """The bill cycle of the item replacing this one on ``plan``: an anniversary cycle goes
        on from the same anchor (the customer's bill day does not move); otherwise the new
        item takes its own cycle (an anniversary one then counts from the change date)."""
        self.ensure_one()
        cycle = self._iot_cycle_of(self.contract_id, plan)
        if cycle == "anniversary" and self.bill_cycle == "anniversary":
            return {"bill_cycle": cycle, "cycle_anchor": self.cycle_anchor}
        return {"bill_cycle": cycle}

    def _iot_change_plan(self, plan, date):
        """Move these items to ``plan`` from ``date``; returns the new items, in order.

        Each item ends the day before ``date`` (its invoiced schedules keep the plan,
        currency and price they were billed with; fees invoiced for later days are
        credited) and a new item on ``plan`` runs from ``date`` to the end of the term:
        the period of the change is billed on both plans, each for its own days, and
        readings from ``date`` on are valued by the new plan's rules. Callers have
        checked each item with ``_iot_plan_change_error``.
        """
        vals_list = [
            {
                "contract_id": item.contract_id.id,
                "device_id": item.device_id.id,
                "product_id": plan.id,
                "name": item.name,
                "date_start": date,
                "duration_months": item.duration_months,
                "date_end": item.date_end,
                **item._iot_cycle_after_change(plan),
            }
            for item in self
        ]
        suspended = self.filtered(lambda item: item.state == "suspended")
        self._iot_terminate(date - timedelta(days=1))
        new_items = self.create(vals_list)
        new_by_device = {item.device_id: item for item in new_items if item.device_id}
        self.env["iot.contract.item.suspension"].create(
            [{"item_id": new_by_device[item.device_id].id, "date_from": date} for item in suspended if item.device_id]
        )
        new_items.filtered(lambda item: item.device_id in suspended.device_id)._iot_sync_paused()
        for old_plan, items in self.grouped("product_id").items():
            items.device_id._log_events(
                "plan_changed",
                description=self.env._(
                    "Plan changed from %(old)s to %(new)s as of %(date)s",
                    old=old_plan.display_name,
                    new=plan.display_name,
                    date=date,
                ),
            )
        return new_items

    # ------------------------------------------------------------------
    # End of term (daily cron)
    # ------------------------------------------------------------------
    @api.model
    def _end_of_term_domain(self, policy, today):
        """Items due for ``policy`` on ``today``: renewed on their last day (the next term's
        schedules exist before it starts), ended the day after it."""
        return [
            ("state", "!=", "terminated"),
            ("date_end", "<=" if policy == "renew" else "<", today),
            "|",
            ("contract_id.end_of_term", "=", policy),
            "&",
            ("contract_id.end_of_term", "=", "plan"),
            ("product_id.iot_end_of_term", "=", policy),
        ]

    @api.model
    def _cron_end_of_term(self, batch_size=END_OF_TERM_BATCH):
        """Renew or end the items whose term is over, a batch per call (the cron's progress API
        calls again while some remain)."""
        today = fields.Date.context_today(self)
        done = 0
        for policy in ("end", "renew"):
            if done >= batch_size:
                break
            items = self.search(self._end_of_term_domain(policy, today), limit=batch_size - done, order="id")
            if policy == "end":
                items._iot_end_term()
            else:
                items._iot_renew(today)
            done += len(items)
        remaining = sum(self.search_count(self._end_of_term_domain(policy, today)) for policy in ("end", "renew"))
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return done

    def _iot_renew(self, today):
        """Another term of ``duration_months`` (same plan and price) until the term covers ``today``."""
        for (date_end, months), items in self.grouped(lambda item: (item.date_end, item.duration_months)).items():
            new_end = date_end
            while new_end <= today:
                new_end = item_date_end(new_end + timedelta(days=1), months or 12)
            items.write({"date_end": new_end})
            description = self.env._("Term renewed until %(date)s", date=new_end)
            items.device_id._log_events("renewed", description=description)
            for contract, contract_items in items.grouped("contract_id").items():
                contract.message_post(
                    body=self.env._(
                        "%(count)s item(s) renewed until %(date)s: %(names)s",
                        count=len(contract_items),
                        date=new_end,
                        names=", ".join(contract_items[:20].mapped("name")),
                    )
                )

    def _iot_end_term(self):
        """The term is over: the item ends on its last day, its device is terminated (event, block command)."""
        for date_end, items in self.grouped("date_end").items():
            devices = items.device_id.filtered(lambda device: device.state != "terminated")
            if devices:
                devices.with_context(iot_transition_date=date_end)._apply_transition(
                    "terminate", self.env._("Term ended on %(date)s", date=date_end)
                )
            (items - devices.contract_item_ids)._iot_terminate(date_end)

    # ------------------------------------------------------------------
    # Schedules
    # ------------------------------------------------------------------
    def _iot_schedule_periods(self, periods_cache=None):
        """Values of the schedules the item should have, one per billing period.

        ``periods_cache`` shares the result between items of the same dates and
        price: a fleet activated at once computes its periods once, not per device.
        """
        self.ensure_one()
        in_advance = self.contract_id.fixed_fee_timing == "advance"
        days_off = self._iot_unbilled_intervals()
        key = (
            self.date_start,
            self.date_end,
            self.billing_period,
            self.cycle_anchor,
            in_advance,
            self.price_unit,
            self.currency_id,
            days_off,
        )
        if periods_cache is not None and key in periods_cache:
            return periods_cache[key]
        periods = []
        for date_from, date_to, period_start, period_end in split_periods(
            self.date_start, self.date_end, self.billing_period, self.cycle_anchor
        ):
            fee = {
                "date_from": date_from,
                "date_to": date_to,
                "invoice_date": period_start if in_advance else period_end,
                "part": "fee" if in_advance else "all",
                "fixed_amount": prorate(
                    self.price_unit,
                    date_from,
                    date_to,
                    period_start,
                    period_end,
                    self.currency_id,
                    days_off=overlap_days(date_from, date_to, days_off),
                ),
            }
            periods.append(fee)
            if in_advance:
                # Usage is always in arrears: measured by the period's end, billed then.
                periods.append(dict(fee, invoice_date=period_end, part="usage", fixed_amount=0.0))
        if periods_cache is not None:
            periods_cache[key] = periods
        return periods

    def _iot_unbilled_intervals(self):
        """Days the fixed fee is not billed: the suspensions, when the plan pauses fees."""
        self.ensure_one()
        if self.product_id.iot_suspended_fees != "pause":
            return ()
        merged = []  # suspensions dated back may overlap: each day counts once
        for suspension in self.suspension_ids.sorted("date_from"):
            start, end = suspension.date_from, suspension.date_to or self.date_end
            if merged and start <= merged[-1][1] + timedelta(days=1):
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return tuple(merged)

    def _iot_suspend(self, date_from):
        """Suspended from ``date_from`` (first day suspended) until resumed."""
        self.write({"state": "suspended"})
        self.env["iot.contract.item.suspension"].create(
            [{"item_id": item.id, "date_from": date_from} for item in self]
        )
        self._iot_sync_paused()

    def _iot_resume(self, date_resumed):
        """Running again from ``date_resumed``: the open suspensions end the day before."""
        self.write({"state": "running"})
        open_suspensions = self.suspension_ids.filtered(lambda suspension: not suspension.date_to)
        # Resumed on (or before) the day it was suspended: no day was suspended.
        void = open_suspensions.filtered(lambda suspension: suspension.date_from >= date_resumed)
        void.unlink()
        (open_suspensions - void).write({"date_to": date_resumed - timedelta(days=1)})
        self._iot_sync_paused()

    def _iot_sync_paused(self):
        self.filtered(lambda item: item.product_id.iot_suspended_fees == "pause")._sync_schedules()

    def _sync_schedules(self):
        """Bring the schedules in line with the items' dates and prices, set-based.

        New periods are inserted in one statement; planned schedules that no
        longer fit are cancelled (kept for the record, never deleted); invoiced
        ones are never changed, and no new schedule overlaps them.
        """
        Schedule = self.env["iot.invoicing.schedule"]
        # Late-usage schedules are not the item's periods: they come and go with late readings.
        existing = Schedule.search([("contract_item_id", "in", self.ids), ("part", "!=", "late")]).grouped(
            "contract_item_id"
        )
        being_invoiced = Schedule.concat(*existing.values()).filtered(lambda schedule: schedule.state == "billing")
        if being_invoiced:
            # Its billing run has valued these periods into an invoice it is building: they cannot move now.
            raise UserError(
                self.env._(
                    "%(item)s is being invoiced by a billing run (its contract is billed in steps): change it "
                    "once the run is done.",
                    item=being_invoiced[0].contract_item_id.display_name,
                )
            )
        to_create, to_cancel, updates = [], Schedule, defaultdict(Schedule.browse)
        periods_cache = {}
        for item in self:
            current = {(schedule.date_from, schedule.part): schedule for schedule in existing.get(item, Schedule)}
            invoiced = [s for s in current.values() if s.state == "invoiced"]
            matched = Schedule
            for vals in item._iot_schedule_periods(periods_cache):
                schedule = current.get((vals["date_from"], vals["part"]))
                if schedule:
                    matched |= schedule
                    if schedule.state != "invoiced":
                        changes = schedule._iot_changes(vals)
                        if changes:
                            updates[tuple(sorted(changes.items()))] |= schedule
                elif not any(
                    s.date_from <= vals["date_to"] and vals["date_from"] <= s.date_to
                    and _parts_overlap(s.part, vals["part"])
                    for s in invoiced
                ):
                    to_create.append(dict(vals, contract_item_id=item.id))
            to_cancel |= (existing.get(item, Schedule) - matched).filtered(lambda schedule: schedule.state == "planned")
        to_cancel.write({"state": "cancelled"})
        for key, schedules in updates.items():
            schedules.write(dict(key))
        return Schedule._iot_insert_schedules(to_create)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_view_schedules(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_invoicing_schedule_action")
        action["domain"] = [("contract_item_id", "=", self.id)]
        action["context"] = {}
        return action

    def action_terminate_today(self):
        devices = self.device_id.filtered(lambda device: device.state != "terminated")
        if devices:
            devices.action_terminate()
        (self - devices.contract_item_ids)._iot_terminate(fields.Date.context_today(self))
        return True


def _parts_overlap(part, other):
    """Whether schedules of these parts bill the same thing (a fee, usage) for a period."""
    return "all" in (part, other) or part == other
