from odoo.tests import freeze_time, tagged

from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestUsageFreedPeriods(IotUsageCommon):
    """A cancelled IoT invoice gives its usage back: readings to value, valuations unlinked."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan = cls.env["product.product"].create(
            {"name": "Freed Plan", "type": "service", "default_code": "FREED", "list_price": 15.0,
             "iot_is_plan": True, "iot_duration_months": 12, "taxes_id": [(5, 0, 0)]}
        )
        cls.env["iot.usage.calculator"].create(
            {"name": "Energy", "product_tmpl_id": cls.plan.product_tmpl_id.id, "metric_id": cls.metric_kwh.id,
             "pricing": "per_unit", "unit_price": 0.5}
        )
        cls.contract = cls.env["iot.contract"].create(
            {"name": "Freed Contract", "reference": "FREED-1", "partner_id": cls.customer.id}
        )
        result = cls.env["iot_billing.device"].api_activate(
            [{"identifier": "U-1", "contract": "FREED-1", "plan": "FREED", "date_start": "2022-04-01"}]
        )
        assert "error" not in result[0], result
        cls.april = cls.device_1.contract_item_ids.schedule_ids.filtered(lambda s: str(s.date_from) == "2022-04-01")

    def _run(self, day):
        with freeze_time(day):
            return self.env["account.move"].browse(self.env["iot.billing.run"].api_run(day)["invoice_ids"])

    def test_cancelled_invoice_returns_its_readings_and_the_next_run_bills_them(self):
        self.api.api_ingest([self._reading(quantity="12", timestamp="2022-04-14T09:00:00Z", message_id="r1")])
        invoice = self._run("2022-04-30")
        reading = self._bucket_at("2022-04-14T09:00:00Z")
        valuation = self.april.valuation_ids
        self.assertEqual((reading.state, reading.schedule_id), ("invoiced", self.april))
        self.assertIn(valuation.move_line_id, invoice.invoice_line_ids)
        self.assertEqual(invoice.amount_untaxed, 21.0)

        invoice.button_cancel()
        self.assertEqual((self.april.state, self.april.invoice_id.id), ("planned", False))
        self.assertEqual((reading.state, reading.schedule_id.id), ("to_value", False))
        self.assertFalse(valuation.move_line_id)
        self.assertFalse(self.april.invoice_line_ids)

        again = self._run("2022-04-30")
        self.assertEqual(again.amount_untaxed, 21.0)
        self.assertEqual((reading.state, reading.schedule_id), ("invoiced", self.april))
        self.assertEqual(self.april.valuation_ids.move_line_id, again.invoice_line_ids.filtered(
            lambda line: "Energy" in line.name))
        self.april.invalidate_recordset(["invoice_line_ids"])  # computed earlier in this transaction
        self.assertEqual(self.april.invoice_line_ids, again.invoice_line_ids)
