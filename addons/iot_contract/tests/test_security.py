from freezegun import freeze_time

from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestContractSecurity(IotContractCommon):
    @freeze_time("2022-04-30")
    def test_integration_user_activates_but_reads_no_contract_nor_invoice(self):
        device = self._pending_device("SEC-1")
        item = self._activate(device)
        self.assertEqual(device.state, "active")
        self._run_billing("2022-04-30")
        invoice = item.schedule_ids[0].invoice_id
        self.assertTrue(invoice)
        integration = self.integration_user
        with self.assertRaises(AccessError):
            invoice.with_user(integration).read(["name"])
        # A portal user only ever finds its own posted invoices: none here.
        self.assertFalse(self.env["account.move"].with_user(integration).search([]))
        with self.assertRaises(AccessError):
            self.contract.with_user(integration).read(["name"])
        with self.assertRaises(AccessError):
            item.with_user(integration).read(["name"])
        with self.assertRaises(AccessError):
            self.BillingRun.with_user(integration).api_run("2022-04-30")
        # Its device reads do not expose the contract fields either.
        self.assertEqual(device.with_user(integration).read(["state"])[0]["state"], "active")
        with self.assertRaises(AccessError):
            device.with_user(integration).read(["contract_id"])

    @freeze_time("2022-04-30")
    def test_iot_user_reads_contracts_but_cannot_bill_nor_edit(self):
        item = self._activate(self._pending_device("SEC-2"))
        user = self.iot_user
        self.assertEqual(self.contract.with_user(user).read(["reference"])[0]["reference"], "IOT-FLEET-001")
        self.assertEqual(len(item.with_user(user).schedule_ids), 12)
        with self.assertRaises(AccessError):
            self.contract.with_user(user).write({"name": "Renamed"})
        with self.assertRaises(AccessError):
            self.BillingRun.with_user(user).api_run("2022-04-30")
        with self.assertRaises(AccessError):
            self.BillingRun.with_user(self.iot_manager).api_run("2022-04-30")

    def test_billing_group_implies_manager_and_invoicing(self):
        self.assertTrue(self.billing_user.has_group("iot_device.group_iot_manager"))
        self.assertTrue(self.billing_user.has_group("account.group_account_invoice"))

    def test_records_of_another_company_are_invisible(self):
        company_b = self.env["res.company"].create({"name": "Hidden Co"})
        contract_b = self.env["iot.contract"].create(
            {"name": "B", "reference": "B-1", "partner_id": self.customer.id, "company_id": company_b.id}
        )
        self.assertFalse(self.env["iot.contract"].with_user(self.iot_manager).search([("id", "=", contract_b.id)]))
