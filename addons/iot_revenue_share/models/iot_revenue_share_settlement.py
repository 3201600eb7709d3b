import base64
import calendar
import io
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from odoo import Command, api, fields, models
from odoo.addons.iot_contract.tools import LockNamespace, try_advisory_lock
from odoo.addons.iot_device.tools import ApiInputError
from odoo.addons.iot_invoice_grouping.tools import FORMATS, money_format, read_and_remove, temporary_path
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import SETTLEMENT_DETAIL, allocate, detail_query, totals_query
from ..tools.settlement_sql import (
    COPY_LINES_SQL,
    INVOICE_PARTS_SQL,
    INVOICE_TOTALS_SQL,
    ORIGINAL_SHARES_SQL,
    REFUNDS_SQL,
    SHARED_LINES_SQL,
)

PERIOD_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")
JOURNAL_CODE = "RSHR"
# First key of the advisory lock that serialises the settlement runs of one company (the
# second is the company); kept under this name for the code and tests that name it.
SETTLEMENT_LOCK = int(LockNamespace.SETTLEMENT)
HUNDRED = Decimal(100)


@dataclass(slots=True)
class Share:
    """One share line being computed: amounts are exact Decimals until allocated."""

    invoice_id: int
    schedule_id: int
    kind: str
    rule_id: int
    partner_id: int
    base: Decimal
    percent: Decimal | None = None
    raw: Decimal = Decimal(0)
    share: Decimal = Decimal(0)


class IotRevenueShareSettlement(models.Model):
    """What one beneficiary receives for one period: the bill (or entry) and its detail."""

    _name = "iot.revenue.share.settlement"
    _description = "IoT Revenue Share Settlement"
    _order = "date_to desc, partner_id, id"
    _check_company_auto = True

    name = fields.Char(required=True, readonly=True)
    period = fields.Char(required=True, readonly=True, index=True, help="YYYY-MM")
    date_from = fields.Date(required=True, readonly=True)
    date_to = fields.Date(required=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    currency_id = fields.Many2one(related="company_id.currency_id")
    partner_id = fields.Many2one("res.partner", string="Beneficiary", required=True, readonly=True, index=True)
    mode = fields.Selection(
        [("bill", "Vendor bill"), ("entry", "Journal entry")], required=True, readonly=True, default="bill"
    )
    move_id = fields.Many2one("account.move", string="Bill / Entry", readonly=True, check_company=True)
    state = fields.Selection(
        [
            ("empty", "Nothing due"),
            ("draft", "Draft"),
            ("posted", "Posted"),
            ("paid", "Paid"),
            ("cancel", "Cancelled"),
        ],
        compute="_compute_state",
        store=True,
    )
    amount_total = fields.Monetary(
        string="Share Total", readonly=True, help="Sum of the share lines; the bill's untaxed amount."
    )
    line_ids = fields.One2many("iot.revenue.share.line", "settlement_id", string="Share Lines")
    line_count = fields.Integer(compute="_compute_line_count")
    detail_attachment_id = fields.Many2one("ir.attachment", string="Detail File", readonly=True, copy=False)

    @api.depends("move_id.state", "move_id.payment_state")
    def _compute_state(self):
        for settlement in self:
            move = settlement.move_id
            if not move:
                settlement.state = "empty"
            elif move.state != "posted":
                settlement.state = move.state
            elif move.payment_state in ("paid", "in_payment"):
                settlement.state = "paid"
            else:
                settlement.state = "posted"

    def _compute_line_count(self):
        counts = dict(
            self.env["iot.revenue.share.line"]._read_group(
                [("settlement_id", "in", self.ids)], ["settlement_id"], ["__count"]
            )
        )
        for settlement in self:
            settlement.line_count = counts.get(settlement, 0)

    @api.ondelete(at_uninstall=False)
    def _unlink_if_bill_not_posted(self):
        if self.move_id.filtered(lambda move: move.state == "posted"):
            raise UserError(self.env._("Reset the bill to draft or cancel it before deleting its settlement."))

    def unlink(self):
        # The shares go with the settlement (cascade) and are computed again by the next run.
        drafts = self.move_id.filtered(lambda move: move.state == "draft")
        result = super().unlink()
        drafts.unlink()
        return result

    # ------------------------------------------------------------------
    # Periods and journals
    # ------------------------------------------------------------------
    @api.model
    def _iot_period_dates(self, period):
        """("YYYY-MM") -> (first day, last day); ApiInputError on anything else."""
        match = PERIOD_PATTERN.match(period) if isinstance(period, str) else None
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ApiInputError("'period' must be a 'YYYY-MM' string, got %r" % (str(period)[:32],))
        year, month = int(match.group(1)), int(match.group(2))
        return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])

    @api.model
    def _iot_create_journals(self):
        """Data hook (install): the revenue share journal of every company with a chart of accounts."""
        for company in self.env["res.company"].search([("chart_template", "!=", False)]):
            self._iot_journal(company)

    @api.model
    def _iot_journal(self, company):
        Journal = self.env["account.journal"].sudo()  # created once per company, by whoever settles first
        journal = Journal.search([("company_id", "=", company.id), ("code", "=", JOURNAL_CODE)], limit=1)
        return journal or Journal.create(
            {"name": self.env._("Revenue Share"), "code": JOURNAL_CODE, "type": "purchase", "company_id": company.id}
        )

    # ------------------------------------------------------------------
    # Settlement run
    # ------------------------------------------------------------------
    @api.model
    def _iot_settle(self, period, mode=None):
        """Settle the current company's shares due by the end of ``period`` ("YYYY-MM").

        Shares every posted (invoiced basis) or paid (cash basis) IoT customer invoice
        of the company not yet shared by its rules, and credit notes of shared ones,
        whatever their month (a late posting is settled in the next run). One
        settlement per beneficiary, with its bill or journal entry. Returns them.
        """
        self.check_access("create")
        date_from, date_to = self._iot_period_dates(period)
        company = self.env.company
        mode = mode or company.iot_revenue_share_mode
        # Two runs of one company at once would compute the same shares (the unique
        # constraint would then fail the second at its insert): refuse the second at once.
        if not try_advisory_lock(self.env.cr, LockNamespace.SETTLEMENT, company.id):
            raise UserError(self.env._("A revenue share settlement of %s is running; run it again later.",
                                       company.name))
        rules = self.env["iot.revenue.share.rule"].search([("company_id", "=", company.id)])
        if not rules:
            return self.browse()
        quantum = Decimal(1).scaleb(-company.currency_id.decimal_places)
        self.env.flush_all()
        params = {"company_id": company.id, "date_to": date_to, "horizon": min(rules.mapped("date_start"))}
        shares = self._iot_original_shares(params, rules, quantum)
        shares += self._iot_refund_shares(params, shares, quantum)
        if not shares:
            return self.browse()
        by_partner = defaultdict(list)
        for share in shares:
            by_partner[share.partner_id].append(share)
        settlements = self.browse()
        for partner in self.env["res.partner"].browse(sorted(by_partner)):
            settlements |= self._iot_create_settlement(
                partner, by_partner[partner.id], period, date_from, date_to, mode, quantum
            )
        return settlements

    def _iot_original_shares(self, params, rules, quantum):
        """Shares of customer invoices not shared yet, with their company amounts and raw shares."""
        cr = self.env.cr
        cr.execute(SQL(ORIGINAL_SHARES_SQL, **params))
        rows = [row for row in cr.fetchall() if row[4]]  # no beneficiary: a device without owner
        if not rows:
            return []
        company_amounts = self._iot_company_amounts({row[0] for row in rows}, quantum)
        shares = []
        for invoice_id, schedule_id, kind, rule_id, partner_id, amount in rows:
            converted = company_amounts.get(invoice_id)
            if converted is None:
                base = Decimal(amount).quantize(quantum)
            elif kind == "device":
                base = converted[(schedule_id, "fixed")] + converted[(schedule_id, "usage")]
            else:
                base = converted[(schedule_id, kind)]
            shares.append(Share(invoice_id, schedule_id, kind, rule_id, partner_id, base))
        # Tiered percents depend on the beneficiary's whole volume under the rule in this run.
        # Rule values are read once: the loops below run once per device part.
        share_types = {rule.id: rule.share_type for rule in rules}
        volumes = defaultdict(Decimal)
        for share in shares:
            if share_types[share.rule_id] == "tiered":
                volumes[(share.partner_id, share.rule_id)] += share.base
        tier_percents = {
            key: rules.browse(key[1])._tier_percent(volume) for key, volume in volumes.items()
        }
        amounts = {rule.id: Decimal(repr(rule.amount)) for rule in rules}
        percents = {rule.id: Decimal(repr(rule.percent)) for rule in rules}
        for share in shares:
            share_type = share_types[share.rule_id]
            if share_type == "fixed":
                share.raw = amounts[share.rule_id]
                continue
            if share_type == "tiered":
                share.percent = tier_percents[(share.partner_id, share.rule_id)]
            else:
                share.percent = percents[share.rule_id]
            share.raw = share.base * share.percent / HUNDRED
        return shares

    def _iot_company_amounts(self, invoice_ids, quantum):
        """Company amounts of the parts of invoices whose parts do not add up to Odoo's company total.

        That is every invoice in a foreign currency: Odoo converts each invoice line
        and rounds it; the parts are given the invoice's company untaxed total in
        proportion to their amounts, exact to the cent. Returns
        ``{invoice_id: {(schedule_id, kind): Decimal}}``; invoices in the company
        currency whose parts add up are left out (their parts are their amounts).
        """
        cr = self.env.cr
        cr.execute(SQL(INVOICE_TOTALS_SQL, invoice_ids=list(invoice_ids)))
        targets = {
            invoice_id: Decimal(company_total)
            for invoice_id, company_total, parts_total in cr.fetchall()
            if Decimal(company_total) != Decimal(parts_total or 0)
        }
        if not targets:
            return {}
        cr.execute(SQL(INVOICE_PARTS_SQL, invoice_ids=list(targets)))
        parts = defaultdict(list)
        for invoice_id, schedule_id, fixed_amount, usage_amount in cr.fetchall():
            parts[invoice_id] += [((schedule_id, "fixed"), Decimal(fixed_amount)),
                                  ((schedule_id, "usage"), Decimal(usage_amount))]
        converted = {}
        for invoice_id, target in targets.items():
            keys = [key for key, _amount in parts[invoice_id]]
            amounts = [amount for _key, amount in parts[invoice_id]]
            total = sum(amounts, Decimal(0))
            raw = [amount * target / total for amount in amounts] if total else [Decimal(0)] * len(amounts)
            converted[invoice_id] = dict(zip(keys, allocate(raw, target, quantum), strict=True))
        return converted

    def _iot_refund_shares(self, params, originals, quantum):
        """Negative shares of posted credit notes of shared invoices (this run's included).

        A credit note reverses each share of its invoice in the proportion of its
        company untaxed amount to the invoice's (all of it for a full credit note),
        at the percent the invoice was shared at.
        """
        cr = self.env.cr
        cr.execute(SQL(REFUNDS_SQL, **params))
        refunds = cr.fetchall()
        if not refunds:
            return []
        origin_ids = list({row[1] for row in refunds})
        refund_ids = [row[0] for row in refunds]
        by_origin = defaultdict(list)
        cr.execute(SQL(SHARED_LINES_SQL, invoice_ids=origin_ids))
        for invoice_id, schedule_id, kind, rule_id, partner_id, base, percent, share in cr.fetchall():
            by_origin[invoice_id].append(Share(
                invoice_id, schedule_id, kind, rule_id, partner_id, Decimal(base),
                Decimal(percent) if percent is not None else None, share=Decimal(share),
            ))
        origins = set(origin_ids)
        for share in originals:
            if share.invoice_id in origins:
                by_origin[share.invoice_id].append(share)
        cr.execute(SQL(SHARED_LINES_SQL, invoice_ids=refund_ids))
        done = {(row[0], row[1], row[3], row[2]) for row in cr.fetchall()}
        # Rules of the shared lines, archived ones included, read once: the loop runs per device part.
        shared_rules = self.env["iot.revenue.share.rule"].with_context(active_test=False).browse(
            {original.rule_id for group in by_origin.values() for original in group}
        )
        cash_rules = set(shared_rules.filtered(lambda rule: rule.basis == "cash").ids)
        amounts = {rule.id: Decimal(repr(rule.amount)) for rule in shared_rules}
        shares = []
        for refund_id, origin_id, refund_total, origin_total, cash_ok in refunds:
            ratio = Decimal(refund_total) / Decimal(origin_total) if Decimal(origin_total) else Decimal(0)
            refund_shares = []
            for original in by_origin.get(origin_id, []):
                if (refund_id, original.schedule_id, original.rule_id, original.kind) in done:
                    continue
                if original.rule_id in cash_rules and not cash_ok:
                    continue
                share = Share(refund_id, original.schedule_id, original.kind, original.rule_id, original.partner_id,
                              original.base * ratio, original.percent)
                if share.percent is None:  # fixed amount per device: the amount shared, in proportion
                    share.raw = (original.share or amounts[original.rule_id]) * ratio
                else:
                    share.raw = share.base * share.percent / HUNDRED
                refund_shares.append(share)
            if refund_shares:
                target = sum((share.base for share in refund_shares), Decimal(0)).quantize(quantum, ROUND_HALF_UP)
                for share, base in zip(refund_shares, allocate([s.base for s in refund_shares], target, quantum),
                                       strict=True):
                    share.base = base
                shares += refund_shares
        return shares

    def _iot_create_settlement(self, partner, shares, period, date_from, date_to, mode, quantum):
        """One beneficiary's settlement: shares rounded once per rule, lines, bill or entry, detail."""
        by_rule = defaultdict(list)
        for share in shares:
            by_rule[share.rule_id].append(share)
        for rule_shares in by_rule.values():
            # The share of a rule is rounded once, on its total; its lines get cents in proportion.
            target = sum((share.raw for share in rule_shares), Decimal(0)).quantize(quantum, ROUND_HALF_UP)
            for share, amount in zip(rule_shares, allocate([s.raw for s in rule_shares], target, quantum),
                                     strict=True):
                share.share = amount
        company = self.env.company
        total = sum((share.share for share in shares), Decimal(0))
        settlement = self.create(
            {
                "name": self.env._("Revenue share %(period)s — %(partner)s", period=period, partner=partner.name),
                "period": period,
                "date_from": date_from,
                "date_to": date_to,
                "company_id": company.id,
                "partner_id": partner.id,
                "mode": mode,
                "amount_total": float(total),
            }
        )
        # Only integers, kind codes and Decimals: nothing to escape in COPY's text format.
        rows = io.StringIO("".join(
            "%d\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n" % (
                settlement.id, share.rule_id, share.kind, share.invoice_id, share.schedule_id, share.base,
                "\\N" if share.percent is None else share.percent, share.share)
            for share in shares
        ))
        self.env["iot.revenue.share.line"].flush_model()
        self.env.cr.copy_expert(COPY_LINES_SQL, rows)
        self.env["iot.revenue.share.line"].invalidate_model()
        groups = defaultdict(Decimal)
        for share in shares:
            groups[(share.rule_id, share.kind)] += share.share
        Rule = self.env["iot.revenue.share.rule"].with_context(active_test=False)
        amounts = [(Rule.browse(rule_id), kind, amount) for (rule_id, kind), amount in sorted(groups.items()) if amount]
        if amounts:
            settlement.move_id = settlement._iot_create_move(amounts, total)
            settlement.move_id.action_post()
            # CSV, written by PostgreSQL: a month of 100,000 devices is 200,000 rows, which XLSX
            # takes several times longer to write (docs/benchmarks.md); the XLSX is one click
            # (or API call) away.
            settlement._iot_attach_detail()
        return settlement

    def _iot_line_label(self, rule, kind):
        kinds = dict(self.env["iot.revenue.share.line"]._fields["kind"]._description_selection(self.env))
        return self.env._("%(rule)s — %(kind)s — %(period)s", rule=rule.name, kind=kinds[kind], period=self.period)

    def _iot_create_move(self, amounts, total):
        """The beneficiary's vendor bill (credit note when negative) or commission entry.

        Bill lines carry the rule's product, quantity 1 and the share as price: Odoo
        computes taxes, accounts and totals as for a bill keyed in by hand.
        """
        self.ensure_one()
        journal = self._iot_journal(self.company_id)
        partner = self.partner_id.with_company(self.company_id)
        ref = self.env._("Revenue share %s", self.period)
        if self.mode == "entry":
            payable = partner.property_account_payable_id
            lines = []
            for rule, kind, amount in amounts:
                accounts = rule.product_id.product_tmpl_id.with_company(self.company_id)._get_product_accounts()
                lines.append(Command.create({
                    "name": self._iot_line_label(rule, kind),
                    "account_id": (accounts["expense"] or journal.default_account_id).id,
                    "partner_id": partner.id,
                    "balance": float(amount),
                }))
            lines.append(Command.create(
                {"name": ref, "account_id": payable.id, "partner_id": partner.id, "balance": float(-total)}
            ))
            return self.env["account.move"].create({
                "move_type": "entry",
                "journal_id": journal.id,
                "company_id": self.company_id.id,
                "date": self.date_to,
                "ref": ref,
                "line_ids": lines,
            })
        sign = 1 if total >= 0 else -1
        return self.env["account.move"].create({
            "move_type": "in_invoice" if sign > 0 else "in_refund",
            "partner_id": partner.id,
            "company_id": self.company_id.id,
            "journal_id": journal.id,
            "currency_id": self.company_id.currency_id.id,
            "invoice_date": self.date_to,
            "date": self.date_to,
            "invoice_payment_term_id": partner.property_supplier_payment_term_id.id,
            "ref": ref,
            "invoice_origin": self.name,
            "invoice_line_ids": [
                Command.create({
                    "product_id": rule.product_id.id,
                    "name": self._iot_line_label(rule, kind),
                    "quantity": 1,
                    "price_unit": float(sign * amount),
                })
                for rule, kind, amount in amounts
            ],
        })

    # ------------------------------------------------------------------
    # Detail
    # ------------------------------------------------------------------
    def _iot_detail_file(self, file_format):
        """(filename, mimetype, bytes) of the per-device detail; the settlement must be readable."""
        filename, mimetype, path = self._iot_detail_to_path(file_format)
        return filename, mimetype, read_and_remove(path)

    def _iot_detail_to_path(self, file_format):
        """(filename, mimetype, path of a temporary file) of the per-device detail.

        The settlement must be readable by the caller. Rows are read with SQL after that
        check and written to the file as they come: the CSV by PostgreSQL (COPY), the XLSX
        from a server-side cursor. The caller removes the file.
        """
        self.ensure_one()
        if file_format not in FORMATS:
            raise UserError(self.env._("Unknown format %s: use csv or xlsx.", file_format))
        self.check_access("read")
        self.env["iot.revenue.share.line"].flush_model()
        path = temporary_path("." + file_format)
        try:
            if file_format == "csv":
                SETTLEMENT_DETAIL.csv_file_copied(self.env.cr, detail_query(self.id), totals_query(self.id), path)
            else:
                rows = SETTLEMENT_DETAIL.stream(self.env.cr, detail_query(self.id))
                SETTLEMENT_DETAIL.xlsx_file(path, rows, self.name, money_format(self.currency_id))
        except BaseException:
            os.unlink(path)
            raise
        filename = "%s-%s-detail.%s" % (
            (self.move_id.name or "revenue-share").replace("/", "-"), self.period, file_format
        )
        return filename, FORMATS[file_format], path

    def _iot_attach_detail(self, file_format="csv"):
        """Attach the detail to the bill (or entry): it is part of what the beneficiary receives."""
        self.ensure_one()
        filename, mimetype, content = self._iot_detail_file(file_format)
        attachment = self.env["ir.attachment"].create({
            "name": filename,
            "mimetype": mimetype,
            "raw": content,
            "res_model": self.move_id._name if self.move_id else self._name,
            "res_id": self.move_id.id or self.id,
        })
        self.detail_attachment_id = attachment
        return attachment

    def action_download_detail_xlsx(self):
        return self._iot_download("xlsx")

    def action_download_detail_csv(self):
        return self._iot_download("csv")

    def _iot_download(self, file_format):
        """The CSV attached to the bill when there is one, else the file streamed by the
        controller: a download adds no attachment (as the invoice detail's download)."""
        self.ensure_one()
        self.check_access("read")
        attachment = self.detail_attachment_id
        if attachment and attachment.name.endswith("." + file_format):
            url = "/web/content/%s?download=true" % attachment.id
        else:
            url = "/iot_revenue_share/detail/%s/%s" % (self.id, file_format)
        return {"type": "ir.actions.act_url", "url": url, "target": "self"}

    def action_view_move(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "account.move",
            "res_id": self.move_id.id,
            "view_mode": "form",
        }

    def action_view_lines(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_revenue_share.iot_revenue_share_line_action")
        action["domain"] = [("settlement_id", "=", self.id)]
        return action

    # ------------------------------------------------------------------
    # Amounts by rule and kind (API, statement)
    # ------------------------------------------------------------------
    def _iot_amounts_by_rule(self):
        """{settlement: [{"rule_id", "rule", "kind", "base", "share"}]} from the share lines."""
        result = defaultdict(list)
        groups = self.env["iot.revenue.share.line"]._read_group(
            [("settlement_id", "in", self.ids)],
            ["settlement_id", "rule_id", "kind"],
            ["base_amount:sum", "share_amount:sum"],
        )
        for settlement, rule, kind, base, share in groups:
            currency = settlement.currency_id
            result[settlement].append(
                {"rule_id": rule.id, "rule": rule.name, "kind": kind, "base": currency.round(base),
                 "share": currency.round(share)}
            )
        return result

    # ------------------------------------------------------------------
    # External API
    # ------------------------------------------------------------------
    @api.model
    def api_settlements(self, period, partner=None):
        """Settlements of ``period`` ("YYYY-MM"), optionally of one beneficiary (id or reference).

        Per settlement: ``{"id", "name", "period", "beneficiary": {"id", "name", "ref"},
        "currency", "amount_total", "amounts": [{"rule_id", "rule", "kind", "base", "share"}],
        "bill_id", "bill", "move_type", "state"}``.
        """
        self._iot_period_dates(period)
        self.check_access("read")
        domain = [("period", "=", period)]
        if partner not in (None, False):
            domain.append(("partner_id", "=", self._iot_api_partner(partner).id))
        settlements = self.search(domain)
        amounts = settlements._iot_amounts_by_rule()
        return [
            {
                "id": settlement.id,
                "name": settlement.name,
                "period": settlement.period,
                "beneficiary": {
                    "id": settlement.partner_id.id,
                    "name": settlement.partner_id.name,
                    "ref": settlement.partner_id.ref or False,
                },
                "currency": settlement.currency_id.name,
                "amount_total": settlement.amount_total,
                "amounts": amounts.get(settlement, []),
                "bill_id": settlement.move_id.id or False,
                "bill": settlement.move_id.name or False,
                "move_type": settlement.move_id.move_type or False,
                "state": settlement.state,
            }
            for settlement in settlements
        ]

    @api.model
    def _iot_api_partner(self, partner):
        Partner = self.env["res.partner"]
        if isinstance(partner, int) and not isinstance(partner, bool):
            found = Partner.search([("id", "=", partner)])
        elif isinstance(partner, str) and partner.strip():
            found = Partner.search([("ref", "=", partner.strip())], limit=2)
        else:
            raise ApiInputError("'partner' must be a partner id or reference")
        if len(found) != 1:
            raise ApiInputError("no single partner %r" % (str(partner)[:64],))
        return found

    @api.model
    def api_settlement_detail(self, settlement_ids, file_format="csv"):
        """Per settlement id: ``{"id", "filename", "mimetype", "content" (base64)}`` or ``{"id", "error"}``."""
        if not isinstance(settlement_ids, list):
            raise ApiInputError("expected a list of settlement ids")
        if len(settlement_ids) > 100:
            raise ApiInputError("at most 100 settlements per call")
        answers = []
        for settlement_id in settlement_ids:
            if not isinstance(settlement_id, int) or isinstance(settlement_id, bool):
                answers.append({"id": settlement_id, "error": "not a settlement id"})
                continue
            settlement = self.browse(settlement_id)
            try:
                if not settlement.exists():
                    raise UserError(self.env._("No settlement %s.", settlement_id))
                filename, mimetype, content = settlement._iot_detail_file(file_format)
            except (UserError, ApiInputError) as error:  # AccessError is a UserError: per entry too
                answers.append({"id": settlement_id, "error": str(error)})
                continue
            answers.append({"id": settlement_id, "filename": filename, "mimetype": mimetype,
                            "content": base64.b64encode(content).decode()})
        return answers

    # ------------------------------------------------------------------
    # Cron
    # ------------------------------------------------------------------
    @api.model
    def _cron_settle_previous_month(self):
        """Monthly: settle last month for every company that has revenue share rules."""
        first_of_month = fields.Date.context_today(self).replace(day=1)
        last_month = fields.Date.subtract(first_of_month, days=1)
        companies = self.env["iot.revenue.share.rule"].sudo()._read_group([], ["company_id"])
        for (company,) in companies:
            self.with_company(company)._iot_settle("%04d-%02d" % (last_month.year, last_month.month))
