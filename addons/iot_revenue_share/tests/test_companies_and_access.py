from odoo import Command
from odoo.addons.iot_device.tools import ApiInputError
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import RevenueShareCommon


@tagged("post_install", "-at_install")
class TestCompaniesAndAccess(RevenueShareCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._fleet(5, owner=cls.vendor)
        cls.rule = cls.Rule.create({
            "name": "Vendor 30 %", "product_tmpl_id": cls.streetlight_plan.product_tmpl_id.id,
            "beneficiary": "device_owner", "percent": 30, "date_start": "2022-01-01",
        })

    def _company_b(self):
        company_b = self.env["res.company"].create({"name": "IoT Company B"})
        self.env["account.chart.template"].try_loading("generic_coa", company_b, install_demo=False)
        self.env.user.company_ids |= company_b
        self.billing_user.company_ids |= company_b
        self._sale_journal(company_b)
        env_b = self.env(context=dict(self.env.context, allowed_company_ids=company_b.ids))
        plan_b = env_b["product.product"].create({
            "name": "Plan B", "default_code": "PLAN-B", "type": "service", "list_price": 40.0,
            "iot_is_plan": True, "company_id": company_b.id, "taxes_id": [Command.clear()],
        })
        contract_b = env_b["iot.contract"].create(
            {"name": "Contract B", "reference": "IOT-B-001", "partner_id": self.customer.id}
        )
        contract_b.action_start()
        env_b["iot.contract.item"].create(
            {"contract_id": contract_b.id, "product_id": plan_b.id, "date_start": "2022-04-01", "name": "B item"}
        )
        env_b["iot.revenue.share.rule"].create({
            "name": "B split", "contract_id": contract_b.id, "partner_id": self.vendor.id, "percent": 50,
            "date_start": "2022-01-01",
        })
        return company_b

    def test_companies_settle_apart(self):
        company_b = self._company_b()
        invoice_a = self._bill("2022-04-30")
        invoice_b = self._bill("2022-04-30", company=company_b)
        self.assertEqual(invoice_b.amount_untaxed, 40.0)
        settlement_a = self._settle("2022-04")
        self.assertEqual(settlement_a.amount_total, self._percent_of(invoice_a.amount_untaxed, 30))
        self.assertEqual(settlement_a.line_ids.invoice_id, invoice_a)
        settlement_b = self._settle("2022-04", company=company_b)
        self.assertEqual((settlement_b.company_id, settlement_b.amount_total), (company_b, 20.0))
        self.assertEqual(settlement_b.move_id.journal_id.company_id, company_b)
        self.assertEqual(settlement_b.move_id.journal_id.code, "RSHR")
        # an accountant of company A alone sees only A's settlements, over the API too
        self.billing_user.company_ids = self.company
        api = self.Settlement.with_user(self.billing_user).with_company(self.company)
        self.assertEqual([answer["id"] for answer in api.api_settlements("2022-04")], settlement_a.ids)
        with self.assertRaises(AccessError):
            settlement_b.with_user(self.billing_user).read(["amount_total"])
        [answer] = api.api_settlement_detail([settlement_b.id])
        self.assertIn("error", answer)

    def test_iot_user_cannot_read_settlements(self):
        self._bill("2022-04-30")
        settlement = self._settle("2022-04")
        with self.assertRaises(AccessError):
            self.Settlement.with_user(self.iot_user).api_settlements("2022-04")
        with self.assertRaises(AccessError):
            settlement.with_user(self.iot_user).read(["amount_total"])
        with self.assertRaises(AccessError):
            settlement.line_ids[:1].with_user(self.iot_user).read(["share_amount"])
        self.assertEqual(settlement.with_user(self.billing_user).line_count, 10)
        with self.assertRaises(AccessError):
            self.env["iot.revenue.share.settle.wizard"].with_user(self.iot_user).create({"period": "2022-04"})
        # the catalogue's rules are readable, not writable, by IoT users
        self.assertEqual(self.rule.with_user(self.iot_user).percent, 30)
        with self.assertRaises(AccessError):
            self.rule.with_user(self.iot_user).percent = 50
        [answer] = self.Settlement.with_user(self.iot_user).api_settlement_detail([settlement.id])
        self.assertIn("error", answer)

    def test_bad_api_input_is_refused_clearly(self):
        api = self.Settlement.with_user(self.billing_user)
        for period in ("2022-13", "2022-4", "April", None, 202204):
            with self.assertRaises(ApiInputError):
                api.api_settlements(period)
        with self.assertRaises(ApiInputError):
            api.api_settlements("2022-04", "NO-SUCH-REF")
        with self.assertRaises(ApiInputError):
            api.api_settlement_detail("not a list")
        [answer] = api.api_settlement_detail(["x"])
        self.assertIn("error", answer)
