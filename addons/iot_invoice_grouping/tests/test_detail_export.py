import base64
import csv
import io
from decimal import Decimal

import openpyxl

from odoo.addons.iot_invoice_grouping.tools import money_format
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

from .common import IotGroupingCommon


@tagged("post_install", "-at_install")
class TestDetailExport(IotGroupingCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._fleet("GRP-DETAIL", 25, "plan_period", "DET")
        cls.env["iot.usage"].api_ingest([
            {"identifier": "DET-%05d" % n, "metric": "kwh", "quantity": str(1000 + n * 37.5),
             "timestamp": "2022-04-11T00:00:00Z", "message_id": "det-%d" % n}
            for n in range(25)
        ])

    def _invoice(self):
        invoice = self._run("2022-04-30")
        self.assertEqual(len(invoice), 1)
        return invoice

    def test_csv_rows_and_total_match_the_invoice(self):
        invoice = self._invoice()
        content = invoice.api_iot_invoice_detail(invoice.id, "csv")["content"]
        rows = list(csv.reader(io.StringIO(base64.b64decode(content).decode("utf-8-sig"))))
        header, body, totals = rows[0], rows[1:-1], rows[-1]
        self.assertEqual(header[0], "Device")
        self.assertEqual(len(body), 50, "25 fixed fees + 25 usage amounts")
        self.assertEqual(sum(Decimal(row[10]) for row in body), Decimal(str(invoice.amount_untaxed)))
        self.assertEqual(Decimal(totals[10]), Decimal(str(invoice.amount_untaxed)))
        self.assertEqual({row[11] for row in body}, {"1", "2"}, "every row names its invoice line")
        self.assertIn("Premium Fleet Subscription — April 2022 — 25 devices", {row[12] for row in body})

    def test_xlsx_read_back(self):
        invoice = self._invoice()
        content = invoice._iot_detail_file("xlsx")[2]
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).active
        values = list(sheet.iter_rows(values_only=True))
        body = values[2:-1]
        self.assertEqual(len(body), 50)
        self.assertAlmostEqual(sum(row[10] for row in body), invoice.amount_untaxed, places=2)
        self.assertAlmostEqual(values[-1][10], invoice.amount_untaxed, places=2)
        self.assertEqual(values[-1][11], "50 rows")
        self.assertEqual({row[11] for row in body}, {1, 2}, "every row names its invoice line")
        lines = list(openpyxl.load_workbook(io.BytesIO(content), read_only=True)["Invoice lines"]
                     .iter_rows(values_only=True))[1:]
        self.assertEqual([line[1] for line in lines], invoice.invoice_line_ids.sorted("sequence").mapped("name"))
        self.assertAlmostEqual(sum(line[4] for line in lines), invoice.amount_untaxed, places=2)

    def test_money_format_follows_the_currency_decimals(self):
        euro = self.env.ref("base.EUR").with_context(active_test=False)
        yen = self.env.ref("base.JPY").with_context(active_test=False)
        self.assertEqual(money_format(euro), '#,##0.00 "%s"' % euro.symbol)
        self.assertEqual(money_format(yen), '#,##0 "%s"' % yen.symbol, "no decimal point without decimals")

    def test_attached_when_posted_if_the_company_asks(self):
        self.env.company.iot_attach_detail = True
        invoice = self._invoice()
        attachments = self.env["ir.attachment"].search(
            [("res_model", "=", "account.move"), ("res_id", "=", invoice.id)]
        )
        self.assertIn("%s-detail.xlsx" % invoice.name.replace("/", "-"), attachments.mapped("name"))
        sent = self.env["account.move.send"]._get_invoice_extra_attachments(invoice)
        self.assertIn(invoice.iot_detail_attachment_id, sent, "the detail goes out with the invoice")
        # Downloading the XLSX gives that file again: no new attachment per click.
        for _click in range(2):
            action = invoice.action_iot_export_detail_xlsx()
            self.assertEqual(action["url"], "/web/content/%d?download=true" % invoice.iot_detail_attachment_id.id)
        self.assertEqual(
            self.env["ir.attachment"].search_count([("res_model", "=", "account.move"), ("res_id", "=", invoice.id)]),
            len(attachments),
        )

    def test_download_without_attachment_is_streamed_not_stored(self):
        invoice = self._invoice()
        for file_format in ("csv", "xlsx"):
            action = getattr(invoice, "action_iot_export_detail_" + file_format)()
            self.assertEqual(action["url"], "/iot_invoice_grouping/detail/%d/%s" % (invoice.id, file_format))
        self.assertFalse(
            self.env["ir.attachment"].search([("res_model", "=", "account.move"), ("res_id", "=", invoice.id)])
        )

    def test_who_cannot_read_the_invoice_cannot_read_its_detail(self):
        invoice = self._invoice()
        with self.assertRaises(AccessError):
            self.env["account.move"].with_user(self.integration_user).api_iot_invoice_detail(invoice.id, "csv")
        other_company = self.env["res.company"].create({"name": "Grouping Co B"})
        accountant_b = new_test_user(
            self.env, login="grp_accountant_b", groups="account.group_account_invoice",
            company_id=other_company.id, company_ids=[(6, 0, other_company.ids)],
        )
        with self.assertRaises(AccessError):
            self.env["account.move"].with_user(accountant_b).api_iot_invoice_detail(invoice.id, "xlsx")
        accountant = new_test_user(self.env, login="grp_accountant", groups="account.group_account_invoice")
        detail = self.env["account.move"].with_user(accountant).api_iot_invoice_detail(invoice.id, "csv")
        self.assertTrue(detail["filename"].endswith("-detail.csv"))

    def test_invoice_pdf_carries_a_short_summary(self):
        invoice = self._invoice()
        html = self.env["ir.actions.report"]._render_qweb_html("account.report_invoice", invoice.ids)[0].decode()
        self.assertIn("Devices billed", html)
        self.assertIn("Energy", html)
        self.assertNotIn("DET-00007", html, "the PDF stays short: no per-device line")
        invoice.iot_show_summary = False
        html = self.env["ir.actions.report"]._render_qweb_html("account.report_invoice", invoice.ids)[0].decode()
        self.assertNotIn("Devices billed", html)


@tagged("post_install", "-at_install")
class TestDetailDownload(IotGroupingCommon, HttpCase):
    """The download route streams the file written on disk, as the invoice's reader."""

    def test_csv_streamed_to_a_reader_of_the_invoice_only(self):
        contract = self._fleet("GRP-STREAM", 3, "plan_period", "STR")
        invoice = self._run("2022-04-30")
        self.assertEqual(invoice.iot_schedule_ids.contract_id, contract)
        new_test_user(self.env, login="grp_stream", password="grp_stream_pw",
                      groups="account.group_account_invoice")
        self.authenticate("grp_stream", "grp_stream_pw")
        response = self.url_open("/iot_invoice_grouping/detail/%d/csv" % invoice.id)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "text/csv")
        self.assertIn("-detail.csv", response.headers["Content-Disposition"])
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        self.assertEqual(rows[0][0], "Device")
        self.assertEqual({row[1] for row in rows[1:-1]}, {"STR-00000", "STR-00001", "STR-00002"})
        self.assertEqual(Decimal(rows[-1][10]), Decimal(str(invoice.amount_untaxed)))
        self.assertFalse(
            self.env["ir.attachment"].search([("res_model", "=", "account.move"), ("res_id", "=", invoice.id)])
        )
        new_test_user(self.env, login="grp_stream_integration", password="grp_stream_pw2",
                      groups="iot_device.group_iot_integration")
        self.authenticate("grp_stream_integration", "grp_stream_pw2")
        refused = self.url_open("/iot_invoice_grouping/detail/%d/csv" % invoice.id)
        self.assertNotEqual(refused.status_code, 200)
