from decimal import Decimal

from odoo.addons.iot_invoice_grouping.tools import iter_detail_rows
from odoo.addons.iot_prepaid.tests.common import IotPrepaidCommon
from odoo.tests import tagged

KIND, AMOUNT, LINE = 6, 10, 11  # columns of a detail row


@tagged("post_install", "-at_install")
class TestPrepaidDetail(IotPrepaidCommon):
    def _detail(self, invoice):
        self.env.flush_all()
        return list(iter_detail_rows(self.env.cr, invoice.id, "en_US", invoice._iot_detail_fixed_parts()))

    def _check_lines_add_up(self, invoice, rows):
        lines = invoice.invoice_line_ids.filtered(lambda line: line.display_type == "product").sorted(
            lambda line: (line.sequence, line.id))
        by_position = {}
        for row in rows:
            by_position[row[LINE]] = by_position.get(row[LINE], Decimal(0)) + Decimal(row[AMOUNT])
        self.assertEqual(
            {position: amount for position, amount in by_position.items()},
            {position: Decimal(str(line.price_subtotal)).quantize(Decimal("0.01"))
             for position, line in enumerate(lines, 1)},
        )
        self.assertEqual(sum(by_position.values()), Decimal(str(invoice.amount_untaxed)).quantize(Decimal("0.01")))

    def test_credit_applied_is_a_detail_row_of_its_line(self):
        self._grant(3.0)
        self._ingest([self._reading(quantity="10", timestamp="2022-04-14T09:00:00Z")])  # 5.00: 3.00 from credit
        result = self._run("2022-04-30")
        self.assertFalse(result["errors"])
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(invoice.amount_untaxed, 22.0)  # 2 fees of 10.00 + 5.00 usage - 3.00 credit
        rows = self._detail(invoice)
        credits = [row for row in rows if row[KIND] == "credit"]
        self.assertEqual([Decimal(row[AMOUNT]) for row in credits], [Decimal("-3.00")])
        self.assertEqual(credits[0][0], self.device_1.name)
        self._check_lines_add_up(invoice, rows)
        self.assertEqual(invoice._iot_detail_row_counts()[invoice.id], len(rows))

    def test_grouped_lines_still_add_up(self):
        self.prepaid_contract.invoice_grouping = "plan_period"
        self._grant(4.0)
        self._ingest([self._reading(quantity="4", timestamp="2022-04-14T09:00:00Z"),
                      self._reading("U-2", quantity="6", timestamp="2022-04-15T09:00:00Z")])  # 2.00 + 3.00
        invoice = self.env["account.move"].browse(self._run("2022-04-30")["invoice_ids"])
        rows = self._detail(invoice)
        self.assertEqual(sum(Decimal(row[AMOUNT]) for row in rows if row[KIND] == "credit"), Decimal("-4.00"))
        self._check_lines_add_up(invoice, rows)
