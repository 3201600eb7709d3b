from decimal import Decimal

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import IotPrepaidCommon


@tagged("post_install", "-at_install")
class TestPrepaidCompanies(IotPrepaidCommon):
    """Wallets stay in their company; a company created after install books its credit sold as
    a customer advance; credit, debits and the credit applied are in the contract's currency."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "IoT Company B"})
        cls.env["account.chart.template"].try_loading("generic_coa", cls.company_b, install_demo=False)
        cls.env.user.company_ids |= cls.company_b
        cls.credit_product = cls.env.ref("iot_prepaid.product_prepaid_credit")

    def test_a_company_created_after_install_books_credit_as_a_customer_advance(self):
        account = self.credit_product.with_company(self.company_b).property_account_income_id
        self.assertEqual(account, self.env["account.chart.template"].with_company(self.company_b).ref(
            "deferred_revenue"))
        self.assertEqual((account.account_type, account.company_ids), ("liability_current", self.company_b))
        contract = self._contract_of_company_b()
        invoice = self.Wallet._for_contracts(contract).with_company(self.company_b)._create_topup(12.0)
        self.assertEqual(invoice.company_id, self.company_b)
        self.assertEqual(invoice.invoice_line_ids.account_id, account)

    def test_top_up_refused_clearly_without_a_customer_advance_account(self):
        income = self.env["account.account"].search(
            [("account_type", "=", "income"), ("company_ids", "in", self.env.company.id)], limit=1)
        self.credit_product.with_company(self.env.company).property_account_income_id = income
        with self.assertRaisesRegex(UserError, "has no customer-advance account in %s" % self.env.company.name):
            self.wallet._create_topup(10.0)
        self.assertFalse(self.env["account.move"].search([("invoice_origin", "=", self.prepaid_contract.display_name)]))

    def _contract_of_company_b(self):
        contract = self.env["iot.contract"].with_company(self.company_b).create({
            "name": "Prepaid Contract B", "reference": "PREPAID-B", "partner_id": self.customer.id,
            "company_id": self.company_b.id,
        })
        if "invoice_grouping" in contract._fields:
            contract.invoice_grouping = "none"
        contract.action_start()
        return contract

    def test_a_wallet_pays_only_its_own_company_usage(self):
        contract_b = self._contract_of_company_b()
        # The same identifier in company B, on B's prepaid contract.
        Device_b = self.Device.with_company(self.company_b)
        Device_b.api_register([{"identifier": "U-1", "partner": self.customer.id}])
        activated = Device_b.api_activate([{"identifier": "U-1", "contract": "PREPAID-B",
                                            "plan": self.prepaid_plan.default_code, "date_start": "2022-04-01"}])
        self.assertNotIn("error", activated[0], activated)
        device_b = Device_b.search([("identifier", "=", "U-1"), ("company_id", "=", self.company_b.id)])
        wallet_b = self.Wallet._for_contracts(contract_b)
        self.assertEqual(wallet_b.company_id, self.company_b)
        grant_b = self.Grant.create({"wallet_id": wallet_b.id, "amount": 50.0, "kind": "promotion"})
        self._grant(1.0)
        # Company A's U-1 uses 5.00: A's wallet pays 1.00 and goes below zero, B's is untouched.
        self._ingest([self._reading(quantity="10", timestamp="2022-04-14T09:00:00Z")])
        self.assertEqual(self.wallet.balance, -4.0)
        self.assertEqual((wallet_b.balance, grant_b.remaining), (50.0, 50.0))
        self.assertFalse(self.Entry.search([("wallet_id", "=", wallet_b.id), ("kind", "=", "debit")]))
        # B's U-1 is paid by B's wallet only.
        answer = self.Usage.with_company(self.company_b).api_ingest([
            self._reading(quantity="4", timestamp="2022-04-14T09:00:00Z")])
        self.assertFalse(answer["rejected"], answer)
        self.assertEqual((wallet_b.balance, self.wallet.balance), (48.0, -4.0))
        self.assertEqual(self.Entry.search([("wallet_id", "=", wallet_b.id), ("kind", "=", "debit")]).device_id,
                         device_b)
        # A grant of B's wallet cannot be scoped to a device of company A.
        with self.assertRaises(UserError):
            self.Grant.create({"wallet_id": wallet_b.id, "amount": 5.0, "kind": "promotion",
                               "device_ids": [Command.set(self.device_1.ids)]})
        # The Billing user of company A sees A's wallets, grants and ledger only.
        Wallet_a = self.Wallet.with_user(self.billing_user)
        self.assertEqual(self.billing_user.company_ids, self.env.company)
        self.assertIn(self.wallet, Wallet_a.search([]))
        self.assertNotIn(wallet_b, Wallet_a.search([]))
        self.assertFalse(self.Grant.with_user(self.billing_user).search([("wallet_id", "=", wallet_b.id)]))
        self.assertFalse(self.Entry.with_user(self.billing_user).search([("wallet_id", "=", wallet_b.id)]))
        with self.assertRaises(AccessError):
            wallet_b.with_user(self.billing_user).read(["balance"])
        self.assertLedgerConsistent()
        self.assertLedgerConsistent(wallet_b)


@tagged("post_install", "-at_install")
class TestPrepaidCurrency(IotPrepaidCommon):
    """A contract in another currency than its company's: prices are converted at the
    schedule's invoice date (rate 2.5), the credit, the debits and the credit applied are in the
    contract's currency, and the invoice's company amounts are Odoo's conversion of them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.eur = cls.env.ref("base.EUR")
        cls.eur.active = True
        cls.env["res.currency.rate"].create({"name": "2022-01-01", "rate": 2.5, "currency_id": cls.eur.id,
                                             "company_id": cls.env.company.id})
        cls.eur_contract = cls._start_contract("Prepaid Contract EUR", "PREPAID-EUR", currency_id=cls.eur.id)
        cls._activate_devices(cls.eur_contract, cls.prepaid_plan, ["U-3"])
        cls.eur_wallet = cls.Wallet._for_contracts(cls.eur_contract)
        cls.eur_april = cls._schedule(cls.device_3.contract_item_ids, "2022-04-01")

    def test_credit_debits_and_credit_applied_in_the_contract_currency(self):
        self.assertNotEqual(self.env.company.currency_id, self.eur)
        self.assertEqual(self.eur_wallet.currency_id, self.eur)
        grant = self._grant(3.0, wallet=self.eur_wallet)  # EUR 3.00
        # 2 kWh x 0.50 USD x 2.5 = EUR 2.50, then 2 kWh more: EUR 5.00 in all, 2.00 beyond the credit.
        self._ingest([self._reading(identifier="U-3", quantity="2", timestamp="2022-04-14T09:00:00Z")])
        self.assertEqual((self.eur_wallet.balance, grant.remaining), (0.5, 0.5))
        self._ingest([self._reading(identifier="U-3", quantity="2", timestamp="2022-04-15T09:00:00Z")])
        self.assertEqual(self._debited(self.eur_april), Decimal("5.00"))
        debits = self.Entry.search([("wallet_id", "=", self.eur_wallet.id), ("kind", "=", "debit")])
        self.assertEqual(debits.currency_id, self.eur)
        result = self._run("2022-04-30")
        self.assertFalse(result["errors"])
        invoice = self.eur_april.invoice_id
        self.assertIn(invoice.id, result["invoice_ids"])
        self.assertEqual(invoice.currency_id, self.eur)
        # The billing valued the period at what the ledger debited, in EUR (the golden rule).
        valued = sum(self.eur_april.valuation_ids.mapped("amount"))
        self.assertEqual(self.eur.compare_amounts(valued, 5.0), 0)
        credit = invoice.invoice_line_ids.filtered(lambda line: line.price_subtotal < 0)
        self.assertEqual(self.eur_april.iot_credit_line_id, credit)
        self.assertEqual((credit.currency_id, credit.price_subtotal), (self.eur, -3.0))
        # Fee 10.00 USD = EUR 25.00, usage EUR 5.00, credit EUR -3.00.
        self.assertEqual(invoice.amount_untaxed, 27.0)
        company_currency = self.env.company.currency_id
        for line in invoice.invoice_line_ids:
            self.assertEqual(company_currency.compare_amounts(line.balance, -self.eur._convert(
                line.price_subtotal, company_currency, self.env.company, invoice.invoice_date)), 0, line.name)
        self.assertEqual(company_currency.compare_amounts(credit.balance, 1.2), 0, "EUR 3.00 at 2.5 = USD 1.20")
        self.assertEqual(self.eur_wallet.balance, 0.0, "the EUR 2.00 beyond the credit was billed")
        self.assertLedgerConsistent(self.eur_wallet)
