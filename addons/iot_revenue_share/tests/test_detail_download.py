import csv
import io
from decimal import Decimal

from odoo.tests import HttpCase, new_test_user, tagged

from .common import RevenueShareCommon


@tagged("post_install", "-at_install")
class TestDetailDownload(RevenueShareCommon, HttpCase):
    """The settlement's detail download stores nothing: the CSV attached to the bill when it was
    settled, else the file streamed by the route, as the invoice detail's download."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lamps = cls._fleet(6, owner=cls.vendor)

    def _settlement(self):
        self._percent_rule(30)
        self._bill("2022-04-30")
        settlement = self._settle("2022-04")
        self.assertEqual(len(settlement), 1)
        return settlement

    def _attachment_count(self, settlement):
        return self.env["ir.attachment"].search_count([
            "|", "&", ("res_model", "=", settlement._name), ("res_id", "=", settlement.id),
            "&", ("res_model", "=", "account.move"), ("res_id", "=", settlement.move_id.id),
        ])

    def test_two_downloads_leave_the_attachments_as_they_are(self):
        settlement = self._settlement().with_user(self.billing_user)
        attached = settlement.detail_attachment_id
        self.assertTrue(attached, "the settlement run attaches the CSV to the bill, on purpose")
        count = self._attachment_count(settlement)
        urls = [
            (settlement.action_download_detail_csv()["url"], settlement.action_download_detail_xlsx()["url"])
            for _click in range(2)
        ]
        self.assertEqual(self._attachment_count(settlement), count, "no attachment per click")
        self.assertEqual(settlement.detail_attachment_id, attached)
        self.assertEqual(urls, 2 * [("/web/content/%d?download=true" % attached.id,
                                     "/iot_revenue_share/detail/%d/xlsx" % settlement.id)])

    def test_route_streams_the_detail_to_a_reader_of_the_settlement_only(self):
        settlement = self._settlement()
        new_test_user(self.env, login="rs_stream", password="rs_stream_pw", groups="iot_contract.group_iot_billing")
        self.authenticate("rs_stream", "rs_stream_pw")
        attached = self.url_open(settlement.with_user(self.billing_user).action_download_detail_csv()["url"])
        self.assertEqual(attached.status_code, 200, "the bill's attachment is readable by the settlement's readers")
        self.assertEqual(attached.content, settlement._iot_detail_file("csv")[2])
        settlement.detail_attachment_id = False  # nothing attached: the CSV is streamed too
        self.assertEqual(settlement.with_user(self.billing_user).action_download_detail_csv()["url"],
                         "/iot_revenue_share/detail/%d/csv" % settlement.id)
        count = self._attachment_count(settlement)
        response = self.url_open("/iot_revenue_share/detail/%d/csv" % settlement.id)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "text/csv")
        self.assertIn("-2022-04-detail.csv", response.headers["Content-Disposition"])
        self.assertEqual(response.content, settlement._iot_detail_file("csv")[2])
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
        self.assertEqual(len(rows), 1 + 12 + 1, "header, 6 lamps x (fixed fee, usage), totals")
        self.assertEqual(Decimal(rows[-1][10]), Decimal(repr(settlement.amount_total)).quantize(Decimal("0.01")))
        xlsx = self.url_open("/iot_revenue_share/detail/%d/xlsx" % settlement.id)
        self.assertEqual(xlsx.status_code, 200)
        self.assertIn("spreadsheetml", xlsx.headers["Content-Type"])
        self.assertEqual(self._attachment_count(settlement), count, "streamed, not stored")
        new_test_user(self.env, login="rs_stream_user", password="rs_stream_pw2", groups="iot_device.group_iot_user")
        self.authenticate("rs_stream_user", "rs_stream_pw2")
        refused = self.url_open("/iot_revenue_share/detail/%d/csv" % settlement.id)
        self.assertNotEqual(refused.status_code, 200)
