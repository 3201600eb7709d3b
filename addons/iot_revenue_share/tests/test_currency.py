from decimal import Decimal

from odoo.tests import tagged

from .common import RevenueShareCommon


@tagged("post_install", "-at_install")
class TestForeignCurrency(RevenueShareCommon):
    """A contract billed in another currency: shares of the company amounts Odoo computed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        company_currency = cls.company.currency_id
        cls.foreign = cls.env.ref("base.EUR") if company_currency.name != "EUR" else cls.env.ref("base.USD")
        cls.foreign.active = True
        cls.env["res.currency.rate"].create(
            {"name": "2022-01-01", "rate": 0.8734, "currency_id": cls.foreign.id, "company_id": cls.company.id}
        )
        cls.foreign_contract = cls.env["iot.contract"].create({
            "name": "Foreign fleet", "reference": "IOT-FX-001", "partner_id": cls.customer.id,
            "currency_id": cls.foreign.id,
        })
        cls.foreign_contract.action_start()
        cls._fleet(30, prefix="FX", contract=cls.foreign_contract, owner=cls.vendor)

    def test_share_of_the_company_amount_to_the_cent(self):
        self._percent_rule(30)
        invoice = self._bill("2022-04-30")
        self.assertEqual(invoice.currency_id, self.foreign)
        company_untaxed = invoice.amount_untaxed_signed
        self.assertNotEqual(company_untaxed, invoice.amount_untaxed)
        settlement = self._settle("2022-04")
        self.assertEqual(settlement.move_id.currency_id, self.company.currency_id)
        self.assertEqual(settlement.move_id.amount_untaxed, self._percent_of(company_untaxed, 30))
        total, rows, totals_row = self._detail_total(settlement)
        self.assertEqual(rows, 60)
        self.assertEqual(total, Decimal(repr(settlement.amount_total)).quantize(Decimal("0.01")))
        # the device bases add up to Odoo's company amount of the invoice
        self.assertEqual(Decimal(totals_row[8]), Decimal(repr(company_untaxed)).quantize(Decimal("0.01")))
