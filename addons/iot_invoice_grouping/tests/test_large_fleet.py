from decimal import ROUND_HALF_UP, Decimal

from odoo.tests import tagged

from .common import IotGroupingCommon


@tagged("post_install", "-at_install")
class TestLargeFleet(IotGroupingCommon):
    def test_ten_thousand_devices_one_short_invoice(self):
        contract = self._fleet("GRP-10K", 10000, "plan_period", "BIG")
        self.env["iot.usage"].api_ingest([
            {"identifier": "BIG-%05d" % n, "metric": "kwh", "quantity": "%d.125" % (n % 997),
             "timestamp": "2022-04-20T00:00:00Z", "message_id": "big-%d" % n}
            for n in range(10000)
        ])
        invoice = self._run("2022-04-30")
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.invoice_origin, contract.reference)
        self.assertLessEqual(len(invoice.invoice_line_ids), 3)
        fee = invoice.invoice_line_ids.filtered(lambda line: line.iot_line_kind == "fixed")
        self.assertEqual(fee.name, "Premium Fleet Subscription — April 2022 — 10,000 devices")
        self.assertEqual((fee.quantity, fee.price_unit), (10000.0, 9.99))
        members = self._assert_exact(invoice)
        # The ungrouped computation: every device's fee and usage, each rounded to the cent.
        ungrouped = Decimal("9.99") * 10000 + sum(
            (Decimal("%d.125" % (n % 997)) * Decimal("0.00005")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            for n in range(10000)
        )
        self.assertEqual(members, ungrouped)
        self.assertEqual(Decimal(repr(invoice.amount_untaxed)).quantize(Decimal("0.01")), ungrouped)
        self.assertEqual(invoice.state, "posted")
