from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import new_test_user, tagged


def iot_company_models(env):
    """Every stored model of the IoT modules (whichever are installed) that has a company."""
    modules = env["ir.module.module"].search([("name", "=like", "iot\\_%"), ("state", "=", "installed")]).mapped("name")
    names = set(env["ir.model.data"].search([("module", "in", modules), ("model", "=", "ir.model")]).mapped(
        lambda data: env["ir.model"].browse(data.res_id).model))
    return sorted(
        name for name in names
        if name in env and env[name]._original_module in modules
        and not env[name]._abstract and not env[name]._transient and env[name]._auto
        and "company_id" in env[name]._fields and env[name]._fields["company_id"].store
    )


@tagged("post_install", "-at_install")
class TestTenantIsolation(IotContractCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tenant_b = cls.env["res.company"].create({"name": "Tenant B", "iot_mqtt_topic_prefix": "tenant-b"})
        cls.env["account.chart.template"].try_loading("generic_coa", cls.tenant_b, install_demo=False)
        cls.env.user.company_ids |= cls.tenant_b
        B = cls.env["iot.contract"].with_company(cls.tenant_b)
        cls.customer_b = cls.env["res.partner"].create({"name": "Customer of B", "company_id": cls.tenant_b.id})
        cls.plan_b = cls._create_plan("Plan of B", "PLAN-B", 7.0, company_id=cls.tenant_b.id)
        cls.contract_b = B.create({"name": "Contract of B", "reference": "B-001", "partner_id": cls.customer_b.id,
                                   "company_id": cls.tenant_b.id})
        cls.device_b = cls.env["iot_billing.device"].with_company(cls.tenant_b).create({
            "name": "Camera of B", "identifier": "B-CAM-1", "partner_id": cls.customer_b.id,
            "company_id": cls.tenant_b.id, "state": "pending"})
        cls.env["iot.contract.item"].with_company(cls.tenant_b).create({
            "contract_id": cls.contract_b.id, "device_id": cls.device_b.id, "product_id": cls.plan_b.id,
            "date_start": "2022-04-01"})
        cls.env["iot.billing.run"].with_company(cls.tenant_b).api_run("2022-05-01")
        cls.device_b.with_company(cls.tenant_b).action_suspend()
        cls.user_a = new_test_user(cls.env, login="tenant_a_billing", groups="iot_contract.group_iot_billing",
                                   company_id=cls.company.id, company_ids=[cls.company.id])

    def test_every_iot_model_has_a_company_rule(self):
        models = iot_company_models(self.env)
        self.assertIn("iot_billing.device", models)
        self.assertIn("iot.invoicing.schedule", models)
        rules = self.env["ir.rule"].sudo().search([("model_id.model", "in", models)])
        ruled = {rule.model_id.model for rule in rules if "company_ids" in (rule.domain_force or "")}
        self.assertEqual(sorted(set(models) - ruled), [], "models of a company without a multi-company rule")

    def test_tenant_a_sees_nothing_of_tenant_b(self):
        self.env.flush_all()
        seen_in_b = []
        for name in iot_company_models(self.env):
            Model = self.env[name].sudo().with_context(active_test=False)
            if not Model.search_count([("company_id", "=", self.tenant_b.id)]):
                continue
            seen_in_b.append(name)
            as_a = self.env[name].with_user(self.user_a).with_context(active_test=False)
            with self.subTest(model=name):
                self.assertEqual(as_a.search_count([("company_id", "=", self.tenant_b.id)]), 0)
        # The scenario of B left records in the models that matter: the check above compared something.
        for name in ("iot_billing.device", "iot_billing.device.event", "iot_billing.device.command", "iot.contract",
                     "iot.contract.item", "iot.invoicing.schedule", "iot.billing.run"):
            self.assertIn(name, seen_in_b)
        invoices = self.env["account.move"].with_user(self.user_a).search([("company_id", "=", self.tenant_b.id)])
        self.assertFalse(invoices)

    def test_tenant_b_commands_on_its_own_topics(self):
        commands = self.env["iot_billing.device.command"].sudo().search([("device_id", "=", self.device_b.id)])
        self.assertTrue(commands)
        self.assertEqual(set(commands.mapped("topic")), {"tenant-b/iot/B-CAM-1/commands"})
