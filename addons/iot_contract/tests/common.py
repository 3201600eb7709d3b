from odoo import Command
from odoo.addons.iot_device.tests.common import IotDeviceCommon
from odoo.tests import new_test_user


class IotContractCommon(IotDeviceCommon):
    """A customer, the 'Premium Fleet Subscription' plan (15.00 a month, 10% tax)
    and the 'IOT Fleet Contract'; no demo data."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Item = cls.env["iot.contract.item"]
        cls.Schedule = cls.env["iot.invoicing.schedule"]
        cls.BillingRun = cls.env["iot.billing.run"]
        cls.sale_journal = cls._sale_journal(cls.company)
        cls.tax_10 = cls.env["account.tax"].create(
            {"name": "IoT test VAT 10%", "amount": 10.0, "type_tax_use": "sale", "company_id": cls.company.id}
        )
        cls.plan = cls._create_plan("Premium Fleet Subscription", "PREMIUM-FLEET", 15.0, cls.tax_10)
        cls.contract = cls.env["iot.contract"].create(
            {
                "name": "IOT Fleet Contract",
                "reference": "IOT-FLEET-001",
                "partner_id": cls.customer.id,
                "journal_id": cls.sale_journal.id,
            }
        )
        cls.billing_user = new_test_user(cls.env, login="iot_billing", groups="iot_contract.group_iot_billing")

    @classmethod
    def _sale_journal(cls, company):
        journal = cls.env["account.journal"].search([("company_id", "=", company.id), ("type", "=", "sale")], limit=1)
        journal.write({"code": "INV", "iot_monthly_sequence": True})
        return journal

    @classmethod
    def _create_plan(cls, name, code, price, tax=None, **extra):
        return cls.env["product.product"].create(
            {
                "name": name,
                "default_code": code,
                "type": "service",
                "list_price": price,
                "iot_is_plan": True,
                "iot_duration_months": 12,
                "iot_billing_period": "monthly",
                "taxes_id": [Command.set(tax.ids if tax else [])],
                **extra,
            }
        )

    def _pending_device(self, identifier, name=None, partner=None):
        self.Device.with_user(self.integration_user).api_register(
            [{"identifier": identifier, "name": name or identifier, "partner": (partner or self.customer).id}]
        )
        return self.Device.search([("identifier", "=", identifier)])

    def _activate(self, device, date_start="2022-04-01", contract=None, plan=None, **extra):
        """Activate through the API as the integration user; return the contract item."""
        result = self.Device.with_user(self.integration_user).api_activate(
            [
                {
                    "identifier": device.identifier,
                    "contract": (contract or self.contract).reference,
                    "plan": (plan or self.plan).default_code,
                    "date_start": date_start,
                    **extra,
                }
            ]
        )[0]
        self.assertNotIn("error", result, result)
        return self.Item.browse(result["contract_item_id"])

    def _run_billing(self, date, company=None):
        run = self.BillingRun.with_user(self.billing_user).with_company(company or self.company)
        return run.api_run(date)
