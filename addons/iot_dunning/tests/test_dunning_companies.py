from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import IotDunningCommon


@tagged("post_install", "-at_install")
class TestDunningCompanies(IotDunningCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "IoT Dunning Company B"})
        cls.env["account.chart.template"].try_loading("generic_coa", cls.company_b, install_demo=False)
        cls.env.user.company_ids |= cls.company_b
        cls.billing_user.company_ids |= cls.company_b
        cls._sale_journal(cls.company_b)
        env_b = cls.env(context=dict(cls.env.context, allowed_company_ids=[cls.company_b.id]))
        cls.policy_b = env_b["iot.dunning.policy"].create(
            {"name": "B: reminders only", "level_ids": [Command.create({"name": "B reminder", "days_after_due": 3})]}
        )
        cls.company_b.iot_dunning_policy_id = cls.policy_b
        plan_b = env_b["product.product"].create(
            {
                "name": "Plan B",
                "default_code": "PLAN-B",
                "type": "service",
                "list_price": 30.0,
                "iot_is_plan": True,
                "company_id": cls.company_b.id,
                "taxes_id": [Command.clear()],
            }
        )
        cls.contract_b = env_b["iot.contract"].create(
            {"name": "Contract B", "reference": "IOT-B", "partner_id": cls.customer.id}
        )
        cls.device_b = env_b["iot_billing.device"].create(
            {"name": "B1", "identifier": "SL-1", "state": "active", "company_id": cls.company_b.id}
        )
        env_b["iot.contract.item"].create(
            {
                "contract_id": cls.contract_b.id,
                "product_id": plan_b.id,
                "device_id": cls.device_b.id,
                "date_start": "2022-04-01",
            }
        )
        with freeze_time("2022-04-30"):
            result = cls.BillingRun.with_user(cls.billing_user).with_company(cls.company_b).api_run("2022-04-30")
        cls.invoice_b = env_b["account.move"].browse(result["invoice_ids"])

    def test_each_company_applies_its_own_policy(self):
        self.assertEqual((self.invoice_b.company_id, self.invoice_b.amount_total), (self.company_b, 30.0))
        with freeze_time("2022-06-10"):
            self.env["iot.contract"]._cron_iot_dunning()
        self.assertEqual(self.contract_b.iot_dunning_line_ids.level_id, self.policy_b.level_ids)
        self.assertEqual(self.contract_b.iot_dunning_line_ids.company_id, self.company_b)
        self.assertEqual(self.device_b.state, "active", "company B's policy does not block")
        self.assertEqual(self.light_1.state, "suspended", "company A's policy blocks")
        # Same identifier in both companies: the block went to A's device only.
        self.assertFalse(self._commands(self.device_b, "block"))

    def test_paying_in_one_company_releases_nothing_in_the_other(self):
        self.policy_b.level_ids.block = True
        with freeze_time("2022-06-10"):
            self.env["iot.contract"]._cron_iot_dunning()
        self.assertEqual((self.light_1.state, self.device_b.state), ("suspended", "suspended"))
        self.env = self.env(context=dict(self.env.context, allowed_company_ids=[self.company_b.id]))
        self._pay(self.invoice_b.with_env(self.env), 30.0, "2022-06-12")
        self.assertEqual((self.light_1.state, self.device_b.state), ("suspended", "active"))

    def test_users_of_one_company_see_only_its_dunning(self):
        with freeze_time("2022-06-10"):
            self.env["iot.contract"]._cron_iot_dunning()
        user_a = self.billing_user.copy(
            {"login": "billing_a_only", "company_ids": [Command.set(self.company.ids)], "company_id": self.company.id}
        )
        Policy = self.env["iot.dunning.policy"].with_user(user_a)
        self.assertEqual(Policy.search([]), self.policy)
        self.assertEqual(self.env["iot.dunning.line"].with_user(user_a).search([]).company_id, self.company)
        with self.assertRaises(AccessError):
            self.policy_b.with_user(user_a).read(["name"])
