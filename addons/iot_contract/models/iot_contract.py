from odoo import Command, api, fields, models
from odoo.addons.base.models.res_partner import _tz_get
from odoo.exceptions import UserError
from odoo.tools.misc import format_date

from ..tools import BILL_CYCLES, BILLING_PERIODS


class IotContract(models.Model):
    _name = "iot.contract"
    _description = "IoT Contract"
    _inherit = ["mail.thread", "mail.activity.mixin", "analytic.mixin"]
    _order = "name, id"
    _check_company_auto = True
    _rec_names_search = ["name", "reference"]

    name = fields.Char(required=True, tracking=True)
    reference = fields.Char(
        required=True,
        index=True,
        copy=False,
        tracking=True,
        help="Unique per company; device platforms name the contract by it in the API.",
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        required=True,
        tracking=True,
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    currency_id = fields.Many2one("res.currency", required=True, default=lambda self: self.env.company.currency_id)
    journal_id = fields.Many2one(
        "account.journal",
        compute="_compute_journal_id",
        store=True,
        readonly=False,
        check_company=True,
        domain="[('type', '=', 'sale')]",
        help="Sales journal of the invoices; the company's first sales journal when empty.",
    )
    payment_term_id = fields.Many2one(
        "account.payment.term",
        check_company=True,
        compute="_compute_partner_defaults",
        store=True,
        readonly=False,
    )
    fiscal_position_id = fields.Many2one(
        "account.fiscal.position",
        check_company=True,
        compute="_compute_partner_defaults",
        store=True,
        readonly=False,
    )
    state = fields.Selection(
        [("draft", "Draft"), ("running", "Running"), ("closed", "Closed")],
        required=True,
        default="draft",
        tracking=True,
        index=True,
        copy=False,
    )
    billing_period = fields.Selection(
        BILLING_PERIODS,
        required=True,
        default="monthly",
        help="Default billing period of items whose product is not an IoT plan.",
    )
    bill_cycle = fields.Selection(
        [("plan", "As the Plan Says"), *BILL_CYCLES],
        string="Bill Cycle",
        required=True,
        default="plan",
        help="Cycle of the items put on the contract from now on: the plan's, or this one for every "
        "plan. Calendar: calendar months; anniversary: periods start on the item's start day. "
        "Items keep the cycle they were created with.",
    )
    fixed_fee_timing = fields.Selection(
        [("advance", "In advance"), ("arrears", "In arrears")],
        string="Fixed Fees Billed",
        required=True,
        default="arrears",
        help="In advance: a period is billed once it has started. In arrears: once it has ended.",
    )
    end_of_term = fields.Selection(
        [("plan", "As the Plan Says"), ("renew", "Renew"), ("end", "End")],
        string="At End of Term",
        required=True,
        default="plan",
        help="What happens to an item on its last day: the plan's choice, or this one for every item.",
    )
    tz = fields.Selection(
        _tz_get,
        string="Time Zone",
        required=True,
        default=lambda self: self.env.company.partner_id.tz or "UTC",
        help="Billing periods start and end at midnight in this time zone: readings and events "
        "fall into a period by their local time.",
    )
    auto_post = fields.Boolean(
        string="Post Invoices",
        default=True,
        help="Post the invoices of the billing engine; otherwise they are left in draft.",
    )
    item_ids = fields.One2many("iot.contract.item", "contract_id", string="Items")
    device_ids = fields.One2many("iot_billing.device", "contract_id", string="Devices")
    item_count = fields.Integer(compute="_compute_counts")
    device_count = fields.Integer(compute="_compute_counts")
    schedule_count = fields.Integer(compute="_compute_counts")
    invoice_count = fields.Integer(compute="_compute_invoice_count", groups="account.group_account_invoice")
    note = fields.Html()
    active = fields.Boolean(default=True)

    _sql_constraints = [
        (
            "reference_company_unique",
            "unique(company_id, reference)",
            "Another contract of this company already has this reference.",
        ),
    ]

    @api.depends("company_id")
    def _compute_journal_id(self):
        for contract in self:
            if not contract.journal_id or contract.journal_id.company_id != contract.company_id:
                contract.journal_id = self.env["account.journal"].search(
                    [
                        *self.env["account.journal"]._check_company_domain(contract.company_id),
                        ("type", "=", "sale"),
                    ],
                    limit=1,
                )

    @api.depends("partner_id", "company_id")
    def _compute_partner_defaults(self):
        for contract in self:
            partner = contract.partner_id.with_company(contract.company_id)
            contract.payment_term_id = partner.property_payment_term_id
            contract.fiscal_position_id = (
                self.env["account.fiscal.position"].with_company(contract.company_id)._get_fiscal_position(partner)
                if partner
                else False
            )

    def _compute_counts(self):
        Item = self.env["iot.contract.item"]
        items = dict(Item._read_group([("contract_id", "in", self.ids)], ["contract_id"], ["__count"]))
        devices = dict(
            Item._read_group(
                [("contract_id", "in", self.ids), ("device_id", "!=", False)],
                ["contract_id"],
                ["device_id:count_distinct"],
            )
        )
        schedules = dict(
            self.env["iot.invoicing.schedule"]._read_group(
                [("contract_id", "in", self.ids)], ["contract_id"], ["__count"]
            )
        )
        for contract in self:
            contract.item_count = items.get(contract, 0)
            contract.device_count = devices.get(contract, 0)
            contract.schedule_count = schedules.get(contract, 0)

    def _compute_invoice_count(self):
        counts = dict(
            self.env["iot.invoicing.schedule"]._read_group(
                [("contract_id", "in", self.ids), ("invoice_id", "!=", False)],
                ["contract_id"],
                ["invoice_id:count_distinct"],
            )
        )
        credit_notes = dict(
            self.env["account.move"]._read_group(
                [("iot_contract_id", "in", self.ids)], ["iot_contract_id"], ["__count"]
            )
        )
        for contract in self:
            contract.invoice_count = counts.get(contract, 0) + credit_notes.get(contract, 0)

    @api.depends("name", "reference")
    def _compute_display_name(self):
        for contract in self:
            contract.display_name = (
                "[%s] %s" % (contract.reference, contract.name) if contract.reference else contract.name
            )

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_start(self):
        self.filtered(lambda contract: contract.state == "draft").write({"state": "running"})

    def action_close(self):
        if self.item_ids.filtered(lambda item: item.state != "terminated"):
            raise UserError(self.env._("Terminate the items of the contract before closing it."))
        self.write({"state": "closed"})

    def action_reopen(self):
        self.write({"state": "running"})

    def _action_view(self, xml_id, domain, context=None):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(xml_id)
        action["domain"] = domain
        action["context"] = context or {}
        return action

    def action_view_items(self):
        return self._action_view(
            "iot_contract.iot_contract_item_action",
            [("contract_id", "=", self.id)],
            {"default_contract_id": self.id},
        )

    def action_view_devices(self):
        return self._action_view("iot_device.iot_device_action", [("contract_item_ids.contract_id", "=", self.id)])

    def action_view_schedules(self):
        return self._action_view("iot_contract.iot_invoicing_schedule_action", [("contract_id", "=", self.id)])

    def action_view_invoices(self):
        invoices = (
            self.env["iot.invoicing.schedule"]
            .search([("contract_id", "=", self.id), ("invoice_id", "!=", False)])
            .invoice_id
        ) | self.env["account.move"].search([("iot_contract_id", "=", self.id)])
        return self._action_view(
            "account.action_move_out_invoice_type",
            [("id", "in", invoices.ids)],
            {"default_move_type": "out_invoice", "create": False},
        )

    # ------------------------------------------------------------------
    # Invoicing (called by iot.billing.engine; see readme/USAGE.md for the hooks)
    # ------------------------------------------------------------------
    def _iot_invoice_partner(self):
        """Hook: the partner the contract's invoices go to, who pays them and is dunned for them.
        Base: the contract's customer; iot_organization: the parent of a subsidiary billed to it."""
        self.ensure_one()
        return self.partner_id

    def _iot_prepare_invoice_vals(self, invoice_date):
        self.ensure_one()
        if not self.journal_id:
            # Recorded as the contract's error on the run, instead of a database error.
            raise UserError(self.env._(
                "%(contract)s has no sales journal: install a chart of accounts for %(company)s or choose a "
                "sales journal on the contract.", contract=self.display_name, company=self.company_id.name))
        return {
            "move_type": "out_invoice",
            "partner_id": self._iot_invoice_partner().id,
            "company_id": self.company_id.id,
            "currency_id": self.currency_id.id,
            "journal_id": self.journal_id.id,
            "invoice_date": invoice_date,
            "invoice_payment_term_id": self.payment_term_id.id,
            "fiscal_position_id": self.fiscal_position_id.id,
            "invoice_origin": self.reference,
            "ref": self.name,
            "invoice_line_ids": [],
        }

    def _iot_prepare_invoice_lines(self, parts):
        """Hook: turn the parts of ONE invoice into ``[(move_line_vals, member parts)]``.

        ``parts`` come from ``iot.invoicing.schedule._iot_invoice_line_parts``.
        Base: one invoice line per part, taxes of the product mapped by the
        contract's fiscal position, the contract's analytic distribution.
        Override to merge parts (iot_invoice_grouping does).
        """
        self.ensure_one()
        schedules = self.env["iot.invoicing.schedule"].browse([part["schedule_id"] for part in parts])
        schedule_by_id = {schedule.id: schedule for schedule in schedules}
        lines = []
        for part in parts:
            schedule = schedule_by_id[part["schedule_id"]]
            lines.append((self._iot_prepare_line_vals(part, schedule.date_from, schedule.date_to), [part]))
        return lines

    def _iot_prepare_line_vals(self, part, date_from, date_to):
        """Invoice line values of one part (or of several merged parts) over a period."""
        self.ensure_one()
        product = self.env["product.product"].browse(part["product_id"])
        taxes = product.taxes_id._filter_taxes_by_company(self.company_id)
        vals = {
            "display_type": "product",
            "product_id": product.id,
            "name": part["name"],
            "quantity": part["quantity"],
            "price_unit": part["price_unit"],
            "tax_ids": [Command.set(self.fiscal_position_id.map_tax(taxes).ids)],
            "iot_period_from": date_from,
            "iot_period_to": date_to,
        }
        if self.analytic_distribution:
            vals["analytic_distribution"] = self.analytic_distribution
        return vals

    def _iot_billed_in_steps(self):
        """Hook: whether a contract with more due schedules than a billing chunk takes may be
        billed in steps (``iot.billing.engine``, *contracts billed in steps*): its lines must then
        be sums of parts, given by ``_iot_line_keys`` and ``_iot_summary_line_vals``.
        Base: no, one line per part (iot_invoice_grouping groups them)."""
        return False

    def _iot_line_keys(self, parts):
        """Hook of contracts billed in steps: the key of the invoice line of each part (parts of
        one key are summed into one line). Base: one line per part."""
        self.ensure_one()
        return [(part["schedule_id"], part["kind"], part.get("valuation_id")) for part in parts]

    def _iot_summary_line_vals(self, summary):
        """Hook of contracts billed in steps: an invoice line's values from its parts' sums
        (a ``tools.billing_types.LineSummary``). Base: the line of its first part, or, for
        several parts, one line of their total amount (iot_invoice_grouping labels and splits it)."""
        self.ensure_one()
        first = summary["first"]
        if summary["count"] != 1:
            first = dict(first, quantity=1.0, price_unit=float(summary["amount"]))
        return self._iot_prepare_line_vals(first, summary["date_from"], summary["date_to"])

    def _iot_schedule_group_info(self, schedules):
        """Hook: what the invoice lines of these schedules need of each beyond its parts,
        ``{schedule id: tools.billing_types.ScheduleInfo}``, read in bulk. Base: dates, device
        and billing period; iot_invoice_grouping adds what its policies group by."""
        self.ensure_one()
        schedules.fetch(["date_from", "date_to", "device_id", "contract_item_id"])
        schedules.contract_item_id.fetch(["billing_period", "cycle_anchor"])
        return {
            schedule.id: {
                "date_from": schedule.date_from,
                "date_to": schedule.date_to,
                "device_id": schedule.device_id.id,
                "billing_period": schedule.contract_item_id.billing_period,
                "cycle_anchor": schedule.contract_item_id.cycle_anchor or None,
            }
            for schedule in schedules
        }

    def _iot_extra_invoice_lines(self, invoice_date):
        """Hook: invoice line values to add to the contract's invoice of ``invoice_date``, beside
        its schedules' lines (a fee, a charge). Called only when there is an invoice to build;
        such lines bill no schedule part. Base: none."""
        self.ensure_one()
        return []

    def _iot_invoice_periods(self, schedules, parts_by_schedule, run):
        """Hook: the invoices to make of these due, locked ``schedules`` of the contract, as
        ``[(invoice date, [schedules of one period, ...])]``; each period's lines are prepared
        on their own (``_iot_prepare_invoice_lines``), so that it keeps its own labels.
        ``parts_by_schedule``: ``{schedule id: [parts]}``. Schedules left out stay planned for a
        later run (iot_invoice_threshold holds periods below the contract's invoicing level).
        Base: one invoice per invoice date."""
        self.ensure_one()
        return [(invoice_date, [period]) for invoice_date, period in schedules.grouped("invoice_date").items()]

    def _iot_period_label(self, date_from, date_to, period_start, period_end):
        """'April 2022' for a full month, the dates otherwise."""
        if date_from == period_start and date_to == period_end and date_from.month == date_to.month:
            return format_date(self.env, date_from, date_format="MMMM y")
        return "%s - %s" % (format_date(self.env, date_from), format_date(self.env, date_to))

    def _iot_check_price_precision(self):
        """Invoice lines keep their unit price at the 'Product Price' precision: a currency
        with more decimals (KWD, BHD, TND: 3) would see its prices cut on the invoice."""
        digits = self.env["decimal.precision"].precision_get("Product Price")
        for contract in self:
            if contract.currency_id.decimal_places > digits:
                raise UserError(
                    self.env._(
                        "Contract %(contract)s bills in %(currency)s, which has %(places)s decimals, but unit "
                        "prices keep %(digits)s (Settings > Technical > Decimal Accuracy > Product Price): "
                        "raise it to at least %(places)s so that invoices carry the exact amounts.",
                        contract=contract.display_name,
                        currency=contract.currency_id.name,
                        places=contract.currency_id.decimal_places,
                        digits=digits,
                    )
                )

    def _iot_invoice_schedules(self, schedules, run):
        """Invoice the (locked) due ``schedules`` of these contracts: one invoice per
        contract and period.

        Several contracts share one ``account.move`` create and one post: that is
        where an invoice costs most. Returns the invoices created. Raises on any
        accounting error: the caller runs this in a savepoint, and retries the
        contracts one by one to record which one failed.
        """
        self._iot_check_price_precision()
        schedules._iot_value_usage(run)
        parts_by_schedule = {}
        for part in schedules._iot_invoice_line_parts():
            parts_by_schedule.setdefault(part["schedule_id"], []).append(part)
        plans, periods = [], []
        for contract, contract_schedules in schedules.grouped("contract_id").items():
            invoice_plans = contract._iot_invoice_periods(contract_schedules, parts_by_schedule, run)
            for invoice_date, invoice_periods in invoice_plans:
                lines = []
                for period_schedules in invoice_periods:
                    parts = [part for sid in period_schedules.ids for part in parts_by_schedule.get(sid, [])]
                    lines += contract._iot_prepare_invoice_lines(parts) if parts else []
                invoice_schedules = self.env["iot.invoicing.schedule"].concat(*invoice_periods)
                if not lines:
                    # Nothing to bill for the period (no fee, no usage): close it without invoice.
                    invoice_schedules.write({"state": "invoiced"})
                    continue
                plans.append((contract, invoice_date, lines))
                periods.append(invoice_schedules)
        invoices = to_post = self.env["account.move"]
        line_parts = []
        created = self.env["iot.billing.engine"]._create_invoices(run, plans)
        for (invoice, paired), (contract, _date, _lines), period_schedules in zip(created, plans, periods, strict=True):
            period_schedules.write({"state": "invoiced", "invoice_id": invoice.id})
            line_parts += [(line.id, members) for line, members in paired]
            invoices |= invoice
            if contract.auto_post:
                to_post |= invoice
        schedules._iot_link_invoice_lines(line_parts)
        if to_post:
            to_post.action_post()
        return invoices
