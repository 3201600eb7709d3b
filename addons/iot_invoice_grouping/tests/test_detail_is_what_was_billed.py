import base64

from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import freeze_time, tagged


@tagged("post_install", "-at_install")
class TestDetailIsWhatWasBilled(IotContractCommon):
    """The detail of a posted invoice reads what was billed, stored at billing time:
    editing the rule afterwards changes neither the invoice nor its detail."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract.invoice_grouping = "plan_period"
        cls.energy = cls.env["iot.usage.calculator"].create({
            "name": "Energy", "product_tmpl_id": cls.plan.product_tmpl_id.id,
            "metric_id": cls.env.ref("iot_usage.metric_kwh").id, "unit_price": 0.25,
        })

    def _detail(self, invoice):
        return base64.b64decode(invoice.api_iot_invoice_detail(invoice.id, "csv")["content"]).decode("utf-8-sig")

    def test_editing_the_rule_after_posting_changes_nothing_billed(self):
        devices = [self._pending_device("BILLED-%d" % number) for number in range(3)]
        for device in devices:
            self._activate(device)
        self.env["iot.usage"].with_user(self.integration_user).api_ingest([
            {"identifier": device.identifier, "metric": "kwh", "quantity": str(10 * (number + 1)),
             "timestamp": "2022-04-12T00:00:00Z", "message_id": "billed-%d" % number}
            for number, device in enumerate(devices)
        ])
        with freeze_time("2022-04-30"):
            result = self._run_billing("2022-04-30")
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(invoice.state, "posted")
        before = self._detail(invoice)
        self.assertIn("Energy", before)
        # 3 x 15.00 + (10 + 20 + 30) x 0.25
        self.assertEqual(invoice.amount_untaxed, 60.0)
        usage_line = invoice.invoice_line_ids.filtered(lambda line: line.iot_line_kind == "usage")
        self.assertEqual(usage_line.iot_valuation_ids.mapped("unit_price"), [0.25] * 3)
        self.assertEqual(len(usage_line.iot_schedule_ids), 3)

        self.energy.write({"name": "Energy (2023 tariff)", "unit_price": 0.40})
        with freeze_time("2022-05-10"):
            self.contract.action_iot_value_usage()  # re-values open periods only
        self.assertEqual(self._detail(invoice), before)
        self.assertEqual(invoice.amount_untaxed, 60.0)
        self.assertEqual(usage_line.iot_valuation_ids.mapped("name"), ["Energy"] * 3)
        self.assertEqual(
            sorted(invoice._iot_usage_summary()), [("Energy", "kwh", 60.0, 15.0)],
        )
