import base64
import os

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import csv_file, iter_detail_rows, temporary_path, xlsx_file

FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


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
        try:
            with open(path, "rb") as handle:
                return filename, mimetype, handle.read()
        finally:
            os.unlink(path)

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
        rows = iter_detail_rows(self.env.cr, self.id, self.env.lang or "en_US")
        product_lines = self.invoice_line_ids.filtered(lambda line: line.display_type == "product")
        # The rows carry the amounts as billed, quantity x unit price: tax included when every
        # line's taxes are price-included (their sum is then the invoice total), else tax excluded.
        tax_included = self._iot_detail_tax_included(product_lines)
        basis = self.env._("tax included") if tax_included else self.env._("tax excluded")
        total_label = self.env._("Total (%s)", basis)
        path = temporary_path("." + file_format)
        try:
            if file_format == "csv":
                csv_file(rows, path, total_label)
            else:
                symbol = self.currency_id.symbol or self.currency_id.name
                money = ('#,##0.%s "%s"' % ("0" * self.currency_id.decimal_places, symbol)).replace('."', '"')
                invoice_lines = [
                    (number, line.name, line.quantity, line.price_unit, line.price_subtotal)
                    for number, line in enumerate(product_lines.sorted(lambda line: (line.sequence, line.id)), 1)
                ]
                title = self.env._("Detail of %(invoice)s — amounts %(basis)s", invoice=self.name, basis=basis)
                xlsx_file(rows, path, title, money, invoice_lines, total_label)
        except BaseException:
            os.unlink(path)
            raise
        filename = "%s-detail.%s" % ((self.name or "draft").replace("/", "-"), file_format)
        return filename, FORMATS[file_format], path

    @staticmethod
    def _iot_detail_tax_included(product_lines):
        return bool(product_lines) and all(
            line.tax_ids and all(line.tax_ids.mapped("price_include")) for line in product_lines
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
        """The detail attached at posting when there is one, else streamed by the controller:
        a download adds no attachment to the invoice."""
        self.ensure_one()
        self.check_access("read")
        attachment = self.iot_detail_attachment_id
        if attachment and attachment.name.endswith("." + file_format):
            url = "/web/content/%s?download=true" % attachment.id
        else:
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
        to_attach = posted.filtered(lambda move: move.company_id.iot_attach_detail and move.iot_schedule_ids)
        for move in to_attach:
            move.iot_detail_attachment_id = move._iot_attach_detail("xlsx")
        return posted
