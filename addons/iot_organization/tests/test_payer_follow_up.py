from odoo.tests import tagged

from .common import IotOrganizationCommon


@tagged("post_install", "-at_install")
class TestPayerFollowUp(IotOrganizationCommon):
    """Dunning and revenue share follow the invoice's payer, not the contract's customer."""

    def test_invoice_partner_is_the_payer(self):
        contract = self._sub_contract(self.sub_north, "PAY-1", "plan", ["PAY-A"], bill_to="parent")
        self.assertEqual(contract._iot_invoice_partner(), self.holding)
        self.assertEqual(contract._iot_prepare_invoice_vals(contract.create_date.date())["partner_id"], self.holding.id)
        contract.iot_bill_to = "self"
        self.assertEqual(contract._iot_invoice_partner(), self.sub_north)

    def test_dunning_follows_the_payer(self):
        self.assertIn("iot_dunning_recipient_id", self.env["iot.contract"]._fields,
                      "the test database installs iot_dunning (bin/test)")
        contract = self._sub_contract(self.sub_north, "PAY-DUN", "plan", ["PAYD-A"], bill_to="parent")
        invoice = self._run("2022-04-30")
        self.assertEqual(invoice.partner_id, self.holding)
        self.assertEqual(contract.iot_dunning_recipient_id, self.holding, "reminders go to the payer")
        self.assertEqual(contract._iot_overdue_invoices(invoice.invoice_date_due.replace(year=2023)), invoice)
        policy = self.env["iot.dunning.policy"].create({"name": "Org policy"})
        level = self.env["iot.dunning.level"].create({"name": "Reminder", "policy_id": policy.id, "days_after_due": 1})
        contract.iot_dunning_level_id = level
        (self.holding | self.sub_north).invalidate_recordset(["iot_dunning_level_id"])
        self.assertEqual(self.holding.iot_dunning_level_id, level, "the payer is the one dunned")
        self.assertFalse(self.sub_north.iot_dunning_level_id)
        template = self.env.ref("iot_dunning.iot_dunning_mail_template_reminder")
        rendered = template._generate_template(contract.ids, ["partner_to"])[contract.id]
        self.assertEqual(rendered["partner_ids"], self.holding.ids)
