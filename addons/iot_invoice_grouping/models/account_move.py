import base64
import logging
import math
import os
from contextlib import closing
from decimal import Decimal

import psycopg2

from odoo import api, fields, models
from odoo.addons.iot_contract.tools import CommittedSteps, Outcome, claim_rows
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import (
    FIXED_PARTS_SQL,
    FORMATS,
    INVOICE_DETAIL,
    INVOICE_LINE_COLUMNS,
    NO_DEVICE_USER,
    XLSX_MAX_DETAIL_ROWS,
    gzip_member,
    iter_detail_page,
    iter_detail_rows,
    money_format,
    read_and_remove,
    temporary_path,
    xlsx_row,
)

_logger = logging.getLogger(__name__)

# Above this many rows, posting leaves the detail to the cron "IoT: invoice detail files"
# (parameter iot_invoice_grouping.detail_inline_rows): posting waits for the XLSX of those below.
DETAIL_INLINE_ROWS = 20000
# Rows the cron writes per committed step (parameter iot_invoice_grouping.detail_step_rows).
DETAIL_STEP_ROWS = 100000


class AccountMove(models.Model):
    _inherit = "account.move"

    iot_device_count = fields.Integer(
        string="IoT devices", compute="_compute_iot_summary",
        help="Devices (and plain subscriptions) billed on this invoice.",
    )
    iot_schedule_count = fields.Integer(compute="_compute_iot_summary")
    iot_detail_attachment_id = fields.Many2one(
        "ir.attachment", string="IoT detail file", copy=False, readonly=True,
        help="The per-device detail attached when the invoice was posted; sent with it.",
    )
    iot_detail_state = fields.Selection(
        [("pending", "Being written"), ("done", "Attached")],
        string="IoT detail file state", copy=False, readonly=True, index="btree_not_null",
        help="Being written: the detail is too large to be written when the invoice is posted; "
        "the cron \"IoT: invoice detail files\" attaches it as a .csv.gz within minutes. "
        "The invoice cannot be sent until then.",
    )
    iot_detail_row_count = fields.Integer(
        string="IoT detail rows", copy=False, readonly=True,
        help="Rows of the detail file, counted when the invoice was posted (one per fixed fee and usage amount).",
    )
    iot_detail_rows_written = fields.Integer(
        string="IoT detail rows written", compute="_compute_iot_detail_rows_written",
        help="Rows of a detail being written that are already written.",
    )
    iot_show_summary = fields.Boolean(
        string="IoT summary on PDF", default=True,
        help="Print the devices, periods and usage totals under the invoice lines.",
    )

    def _compute_iot_summary(self):
        Schedule = self.env["iot.invoicing.schedule"].sudo()  # counts only; the invoice is readable
        counts = {
            move: (schedules, items)
            for move, schedules, items in Schedule._read_group(
                [("invoice_id", "in", self.ids)], ["invoice_id"], ["__count", "contract_item_id:count_distinct"]
            )
        }
        for move in self:
            move.iot_schedule_count, move.iot_device_count = counts.get(move, (0, 0))

    def _compute_iot_detail_rows_written(self):
        # sudo: the parts are the cron's working data; the invoice's readers see their count.
        written = dict(
            self.env["iot.invoice.detail.part"].sudo()._read_group(
                [("move_id", "in", self.ids)], ["move_id"], ["row_count:sum"]
            )
        )
        for move in self:
            move.iot_detail_rows_written = written.get(move, 0)

    def _iot_usage_summary(self):
        """[(rule, unit, quantity, amount)] of the invoice, for the PDF summary block: the
        valuations billed on its lines, by the rule's name when billed."""
        self.ensure_one()
        rows = self.env["iot.usage.valuation"].sudo()._read_group(
            [("move_line_id.move_id", "=", self.id)], ["calculator_id", "name"], ["quantity:sum", "amount:sum"]
        )
        return [(name, calc._unit_label(), quantity, amount) for calc, name, quantity, amount in rows]

    # ------------------------------------------------------------------
    # Detail
    # ------------------------------------------------------------------
    def _iot_detail_file(self, file_format):
        """(filename, mimetype, bytes) of the invoice's per-device detail."""
        filename, mimetype, path = self._iot_detail_to_path(file_format)
        return filename, mimetype, read_and_remove(path)

    def _iot_detail_to_path(self, file_format):
        """(filename, mimetype, path of a temporary file) of the invoice's per-device detail.

        The invoice must be readable by the caller: its record rules are the
        detail's. Rows are read with SQL after that check, from a server-side
        cursor, and written to the file as they come: memory does not grow with
        the invoice. The caller removes the file.
        """
        self.ensure_one()
        if file_format not in FORMATS:
            raise UserError(self.env._("Unknown format %s: use csv or xlsx.", file_format))
        self.check_access("read")
        if not self.iot_schedule_count:
            raise UserError(self.env._("%s has no IoT detail.", self.display_name))
        for model in ("iot.invoicing.schedule", "iot.usage.valuation", "account.move.line"):
            self.env[model].flush_model()
        if file_format == "xlsx":
            self._iot_check_xlsx_size()
        rows = iter_detail_rows(self.env.cr, self.id, self.env.lang or "en_US", self._iot_detail_fixed_parts(),
                                self._iot_detail_device_user_sql())
        product_lines = self.invoice_line_ids.filtered(lambda line: line.display_type == "product")
        basis, total_label = self._iot_detail_basis(product_lines)
        path = temporary_path("." + file_format)
        try:
            if file_format == "csv":
                INVOICE_DETAIL.csv_file(path, rows, total_label)
            else:
                # The line labels, the same for thousands of rows, are on a sheet of their own.
                invoice_lines = [
                    (number, line.name, line.quantity, line.price_unit, line.price_subtotal)
                    for number, line in enumerate(product_lines.sorted(lambda line: (line.sequence, line.id)), 1)
                ]
                title = self._iot_detail_title(basis)
                INVOICE_DETAIL.xlsx_file(
                    path, map(xlsx_row, rows), title, money_format(self.currency_id), total_label,
                    sheets=[("Invoice lines", INVOICE_LINE_COLUMNS, invoice_lines)],
                )
        except BaseException:
            os.unlink(path)
            raise
        filename = "%s-detail.%s" % ((self.name or "draft").replace("/", "-"), file_format)
        return filename, FORMATS[file_format], path

    def _iot_detail_title(self, basis):
        """The first row of the detail's sheet (iot_white_label puts the company's brand before it)."""
        return self.env._("Detail of %(invoice)s — amounts %(basis)s", invoice=self.name, basis=basis)

    def _iot_detail_device_user_sql(self):
        """Hook: the detail's *Device user* column, an SQL expression over the row's ``device``
        (``iot_billing_device``) and ``schedule`` (``iot_invoicing_schedule``). Base: empty;
        iot_organization names the device's users over the schedule's period."""
        return NO_DEVICE_USER

    def _iot_detail_basis(self, product_lines):
        """(basis, totals row label) of the detail, in the environment's language.

        The rows carry the amounts as billed, quantity x unit price: tax included when every
        line's taxes are price-included (their sum is then the invoice total), else tax excluded.
        """
        tax_included = bool(product_lines) and all(
            line.tax_ids and all(line.tax_ids.mapped("price_include")) for line in product_lines
        )
        basis = self.env._("tax included") if tax_included else self.env._("tax excluded")
        return basis, self.env._("Total (%s)", basis)

    @api.model
    def _iot_detail_fixed_parts(self):
        """SQL of the fixed fees billed on the product lines of the CTE ``line`` (tools/invoice_detail.py
        FIXED_PARTS_SQL), read by the detail and by its row count."""
        return FIXED_PARTS_SQL

    def _iot_detail_row_counts(self):
        """{invoice id: rows of its detail}, counted in SQL: the rows the detail's query reads."""
        for model in ("iot.invoicing.schedule", "iot.usage.valuation", "account.move.line"):
            self.env[model].flush_model()
        self.env.cr.execute(SQL(
            """WITH line AS (
                   SELECT line.id, line.move_id
                     FROM account_move_line line
                    WHERE line.move_id = ANY(%(ids)s) AND line.display_type = 'product'
               )
               SELECT line.move_id, count(*)
                 FROM (%(fixed_parts)s) fixed
                 JOIN line ON line.id = fixed.line_id
                GROUP BY line.move_id
               UNION ALL
               SELECT line.move_id, count(*)
                 FROM line
                 JOIN iot_usage_valuation valuation ON valuation.move_line_id = line.id
                GROUP BY line.move_id""",
            ids=self.ids,
            fixed_parts=self._iot_detail_fixed_parts(),
        ))
        counts = dict.fromkeys(self.ids, 0)
        for move_id, count in self.env.cr.fetchall():
            counts[move_id] += count
        return counts

    def _iot_detail_param(self, name, default):
        return int(self.env["ir.config_parameter"].sudo().get_param("iot_invoice_grouping." + name, default))

    def _iot_xlsx_max_rows(self):
        """Detail rows above which no XLSX is written: what a sheet holds, or fewer if the
        parameter iot_invoice_grouping.detail_xlsx_max_rows says so (a large XLSX is written
        while the user waits for the download)."""
        return min(self._iot_detail_param("detail_xlsx_max_rows", XLSX_MAX_DETAIL_ROWS), XLSX_MAX_DETAIL_ROWS)

    def _iot_check_xlsx_size(self):
        rows = self._iot_detail_row_counts()[self.id]
        if rows > self._iot_xlsx_max_rows():
            raise UserError(
                self.env._(
                    "The detail of %(invoice)s has %(rows)s rows, more than an XLSX file of it can hold "
                    "(%(max)s): download the CSV instead.",
                    invoice=self.display_name, rows=rows, max=self._iot_xlsx_max_rows(),
                )
            )

    def _iot_attach_detail(self, file_format="xlsx"):
        filename, mimetype, content = self._iot_detail_file(file_format)
        return self.env["ir.attachment"].create(
            {
                "name": filename,
                "mimetype": mimetype,
                "raw": content,
                "res_model": self._name,
                "res_id": self.id,
            }
        )

    def action_iot_export_detail_xlsx(self):
        return self._iot_download("xlsx")

    def action_iot_export_detail_csv(self):
        return self._iot_download("csv")

    def _iot_download(self, file_format):
        """The detail attached at posting (or its .csv.gz, for the CSV) when there is one, else
        streamed by the controller: a download adds no attachment to the invoice."""
        self.ensure_one()
        self.check_access("read")
        attachment = self.iot_detail_attachment_id
        suffixes = (".csv", ".csv.gz") if file_format == "csv" else ("." + file_format,)
        if attachment and attachment.name.endswith(suffixes):
            url = "/web/content/%s?download=true" % attachment.id
        else:
            if file_format == "xlsx":
                self._iot_check_xlsx_size()  # a message here rather than an error page from the route
            url = "/iot_invoice_grouping/detail/%s/%s" % (self.id, file_format)
        return {"type": "ir.actions.act_url", "url": url, "target": "self"}

    def action_iot_open_detail(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_invoicing_schedule_action")
        action.update(
            name=self.env._("Detail of %s", self.display_name),
            domain=[("invoice_id", "=", self.id)],
            context={"search_default_group_product": 1},
        )
        return action

    @api.model
    def api_iot_invoice_detail(self, invoice_id, file_format="csv"):
        """The detail of an invoice over the API: ``{"filename", "mimetype", "content" (base64)}``."""
        filename, mimetype, content = self.browse(invoice_id)._iot_detail_file(file_format)
        return {"filename": filename, "mimetype": mimetype, "content": base64.b64encode(content).decode()}

    def _post(self, soft=True):
        posted = super()._post(soft)
        asked = posted.filtered(lambda move: move.company_id.iot_attach_detail)
        if not asked:
            return posted
        # Counted in SQL: reading the schedules of a million-device invoice would load them all.
        counts = asked._iot_detail_row_counts()
        to_attach = asked.filtered(lambda move: counts[move.id])
        inline_rows = min(self._iot_detail_param("detail_inline_rows", DETAIL_INLINE_ROWS), self._iot_xlsx_max_rows())
        deferred = to_attach.filtered(lambda move: counts[move.id] > inline_rows)
        for move in to_attach - deferred:
            move.write(
                {
                    "iot_detail_attachment_id": move._iot_attach_detail("xlsx").id,
                    "iot_detail_state": "done",
                    "iot_detail_row_count": counts[move.id],
                }
            )
        for move in deferred:
            move.write(
                {
                    "iot_detail_attachment_id": False,
                    "iot_detail_state": "pending",
                    "iot_detail_row_count": counts[move.id],
                }
            )
        if deferred:
            self._iot_trigger_detail_cron()
        return posted

    def button_draft(self):
        pending = self.filtered(lambda move: move.iot_detail_state == "pending")
        result = super().button_draft()
        if pending:
            # The detail being written is of the posted invoice; posting again starts anew.
            self.env["iot.invoice.detail.part"].sudo().search([("move_id", "in", pending.ids)]).unlink()
            pending.write({"iot_detail_state": False, "iot_detail_row_count": 0})
        return result

    # ------------------------------------------------------------------
    # Detail written in steps, by the cron "IoT: invoice detail files"
    # ------------------------------------------------------------------
    @api.model
    def _iot_trigger_detail_cron(self):
        # sudo: posting an invoice starts the cron; the poster needs no right on scheduled actions.
        cron = self.env.ref("iot_invoice_grouping.iot_invoice_detail_cron", raise_if_not_found=False)
        if cron:
            cron.sudo()._trigger()

    def _iot_detail_step(self):
        """Write the next step of this invoice's pending detail, in the current transaction.

        A step writes at most ``iot_invoice_grouping.detail_step_rows`` rows, those after
        the last row of the parts already written, as one more part; the step that reaches
        the end attaches the file. Returns the rows written (0 for a step that only attached
        the file), or None when there was nothing to do: the detail is not pending, or
        another transaction is writing it. The caller commits: the cron after each step.
        """
        self.ensure_one()
        if not self._iot_lock_pending_detail():
            return None
        Part = self.env["iot.invoice.detail.part"].sudo()  # sudo: the parts are working data
        last = Part.search([("move_id", "=", self.id)], order="first_row desc", limit=1)
        step_rows = self._iot_detail_param("detail_step_rows", DETAIL_STEP_ROWS)
        move = self._iot_detail_in_file_lang()
        for model in ("iot.invoicing.schedule", "iot.usage.valuation", "account.move.line"):
            self.env[model].flush_model()
        page = iter_detail_page(
            self.env.cr, self.id, move.env.lang, last.last_key if last else None, step_rows,
            self._iot_detail_fixed_parts(), self._iot_detail_device_user_sql(),
        )
        last_key = None

        def rows():
            nonlocal last_key
            for row, key in page:
                last_key = key
                yield row

        # Closed here even on failure: a server-side cursor closed after a rollback to a
        # savepoint would fail the transaction that follows.
        with closing(page):
            data, (count, (total,)) = gzip_member(INVOICE_DETAIL.write_csv_rows, rows())
        if count:
            Part.create(
                {
                    "move_id": self.id,
                    "first_row": last.first_row + last.row_count if last else 0,
                    "row_count": count,
                    "amount_total": str(total),
                    "last_key": last_key,
                    "data": data,
                }
            )
            self.invalidate_recordset(["iot_detail_rows_written"])
        if count < step_rows:
            move._iot_detail_attach_parts()
        return count

    def _iot_detail_in_file_lang(self):
        # The file goes to the customer: in the customer's language.
        return self.with_context(lang=self.partner_id.lang or self.env.lang or "en_US")

    def _iot_lock_pending_detail(self):
        """Lock this invoice's row if its detail is pending: one transaction writes it at a time."""
        self.flush_recordset(["state", "iot_detail_state"])
        where = SQL("state = 'posted' AND iot_detail_state = 'pending'")
        return bool(claim_rows(self.env.cr, self._table, self.ids, where=where))

    def _iot_detail_attach_parts(self):
        """The last step: header, parts and totals as one .csv.gz attached to the invoice.

        Gzip members put end to end are one gzip file: the parts' bytes are not
        decompressed. The content is what ``INVOICE_DETAIL.csv_file`` writes for the whole detail.
        """
        Part = self.env["iot.invoice.detail.part"].sudo()
        parts = Part.search([("move_id", "=", self.id)], order="first_row")
        count = sum(parts.mapped("row_count"))
        total = sum((Decimal(part.amount_total) for part in parts), Decimal(0))
        _basis, total_label = self._iot_detail_basis(
            self.invoice_line_ids.filtered(lambda line: line.display_type == "product")
        )
        totals = gzip_member(INVOICE_DETAIL.write_csv_totals, total_label, count, (total,))[0]
        attachment = self.env["ir.attachment"].create(
            {
                "name": "%s-detail.csv.gz" % (self.name or "draft").replace("/", "-"),
                "mimetype": "application/gzip",
                "raw": INVOICE_DETAIL.csv_gzip_header() + b"".join(parts.mapped("data")) + totals,
                "res_model": self._name,
                "res_id": self.id,
            }
        )
        parts.unlink()
        self.write({"iot_detail_attachment_id": attachment.id, "iot_detail_state": "done"})

    @api.model
    def _iot_write_pending_details(self):
        """Write every pending detail now, step after step, in the current transaction (no
        commit): for tests and benchmarks; the cron does the same with a commit per step."""
        while True:
            pending = self.sudo().search([("iot_detail_state", "=", "pending"), ("state", "=", "posted")])
            steps = [move._iot_detail_step() for move in pending]
            if all(written is None for written in steps):
                return

    @api.model
    def _iot_detail_steps_left(self):
        """Steps left to the pending details: progress reported to the cron."""
        pending = self.sudo().search([("iot_detail_state", "=", "pending"), ("state", "=", "posted")])
        step_rows = self._iot_detail_param("detail_step_rows", DETAIL_STEP_ROWS)
        return sum(
            max(1, math.ceil((move.iot_detail_row_count - move.iot_detail_rows_written) / step_rows))
            for move in pending
        )

    @api.model
    def _cron_write_iot_details(self):
        """The cron "IoT: invoice detail files": write pending details step by step, each step
        committed by the driver of long cron work (``CommittedSteps``), with Odoo 18's progress
        API (called again at once while steps are left).

        A crash loses at most the step being written: rolled back, the detail resumes after
        the last part committed. An invoice whose step fails is logged and left out for the
        rest of the call; the next call tries it again.
        """
        cron = self.env.ref("iot_invoice_grouping.iot_invoice_detail_cron", raise_if_not_found=False)
        # UniqueViolation: another worker committed this step's part first.
        steps = CommittedSteps(
            self.env, crons=cron.sudo() if cron else None, retry_errors=(psycopg2.errors.UniqueViolation,)
        )
        failed = set()
        current = self.browse()

        def write_one_step():
            nonlocal current
            pending = self.sudo().search(
                [("iot_detail_state", "=", "pending"), ("state", "=", "posted"), ("id", "not in", sorted(failed))],
                order="id",
            )
            for move in pending:
                current = move
                if move._iot_detail_step() is not None:
                    return Outcome.DONE
            # Every detail left is being written by another worker (or none is left).
            return Outcome.WAIT if pending else Outcome.FINISHED

        def leave_out(error):
            _logger.error("Invoice %s: its detail file could not be written", current.id, exc_info=error)
            failed.add(current.id)
            return Outcome.RETRY

        steps.run(write_one_step, on_failure=leave_out)
        steps.report(self._iot_detail_steps_left())
