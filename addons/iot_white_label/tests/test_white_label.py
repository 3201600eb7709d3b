from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.exceptions import ValidationError
from odoo.tests import tagged


@tagged("post_install", "-at_install")
class TestWhiteLabel(IotContractCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Command = cls.env["iot_billing.device.command"]
        cls.template = cls.env["mail.template"].create({
            "name": "Brand invoice", "model_id": cls.env.ref("account.model_account_move").id,
            "email_from": "Brand Billing <billing@brand.example>", "subject": "Brand invoice {{ object.name }}",
        })

    def test_downlink_prefix_per_company(self):
        device = self._pending_device("WL-1")
        self.env["ir.config_parameter"].sudo().set_param("iot_device.mqtt_topic_prefix", "")
        self.assertEqual(self.Command._enqueue(device, "block").topic, "iot/WL-1/commands")
        self.company.iot_mqtt_topic_prefix = "/brand-a/"
        self.assertEqual(self.Command._enqueue(device, "block").topic, "brand-a/iot/WL-1/commands")
        self.company.iot_mqtt_topic_prefix = False
        self.env["ir.config_parameter"].sudo().set_param("iot_device.mqtt_topic_prefix", "shared")
        self.assertEqual(self.Command._enqueue(device, "block").topic, "shared/iot/WL-1/commands",
                         "without a prefix of its own, the company keeps the system parameter's")
        for bad in ("a/+/b", "tenant/#", "a//b", "a\x00"):
            with self.subTest(prefix=bad), self.assertRaises(ValidationError):
                self.company.iot_mqtt_topic_prefix = bad

    def _billed_invoice(self):
        self._activate(self._pending_device("WL-2"), date_start="2022-04-01")
        self._run_billing("2022-05-01")
        return self.env["account.move"].search(
            [("partner_id", "=", self.customer.id), ("move_type", "=", "out_invoice")], order="id desc", limit=1)

    def test_branded_detail_and_invoice_mail(self):
        invoice = self._billed_invoice()
        self.assertTrue(invoice.iot_schedule_count)
        self.assertEqual(invoice._get_mail_template(), self.env.ref("account.email_template_edi_invoice"))
        self.assertTrue(invoice._iot_detail_title("tax excluded").startswith(self.company.name + " — Detail of "))

        self.company.write({"iot_brand_name": "Brand A", "iot_invoice_mail_template_id": self.template.id})
        self.assertEqual(invoice._get_mail_template(), self.template)
        self.assertEqual(invoice._iot_detail_title("tax excluded"),
                         "Brand A — Detail of %s — amounts tax excluded" % invoice.name)
        other = self.env["account.move"].create({
            "move_type": "out_invoice", "partner_id": self.customer.id,
            "invoice_line_ids": [(0, 0, {"name": "Not IoT", "quantity": 1, "price_unit": 5})],
        })
        self.assertEqual(other._get_mail_template(), self.env.ref("account.email_template_edi_invoice"),
                         "invoices that bill no device keep Odoo's e-mail")
        self.assertEqual(self.env["account.move.send"]._get_default_mail_template_id(invoice), self.template)
