from odoo.tests import freeze_time, tagged

from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestUsagePlanChange(IotUsageCommon):
    """After a plan change, readings from the effective date on are valued by the new plan's rules."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.basic, cls.gold = (
            cls.env["product.product"].create(
                {"name": name, "type": "service", "default_code": code, "list_price": 0.0, "iot_is_plan": True,
                 "iot_duration_months": 12, "taxes_id": [(5, 0, 0)]}
            )
            for name, code in (("Basic metered", "BASIC-M"), ("Gold metered", "GOLD-M"))
        )
        for plan, price in ((cls.basic, 0.5), (cls.gold, 1.0)):
            cls.env["iot.usage.calculator"].create(
                {"name": "Energy " + plan.default_code, "product_tmpl_id": plan.product_tmpl_id.id,
                 "metric_id": cls.metric_kwh.id, "pricing": "per_unit", "unit_price": price}
            )
        cls.contract = cls.env["iot.contract"].create(
            {"name": "Plan change", "reference": "PLAN-CHANGE-1", "partner_id": cls.customer.id}
        )
        result = cls.env["iot_billing.device"].api_activate(
            [{"identifier": "U-1", "contract": "PLAN-CHANGE-1", "plan": "BASIC-M", "date_start": "2022-04-01"}]
        )
        assert "error" not in result[0], result

    def test_rules_switch_at_the_effective_date(self):
        self.api.api_ingest([
            self._reading(quantity="10", timestamp="2022-05-05T12:00:00Z", message_id="before"),
            self._reading(quantity="10", timestamp="2022-05-20T12:00:00Z", message_id="after"),
        ])
        with freeze_time("2022-05-11"):
            result = self.env["iot_billing.device"].api_change_plan(
                [{"identifier": "U-1", "plan": "GOLD-M", "date": "2022-05-11"}]
            )
        new_item = self.env["iot.contract.item"].browse(result[0]["contract_item_id"])
        with freeze_time("2022-06-01"):
            run = self.env["iot.billing.run"].api_run("2022-05-31")
        may = self.env["account.move"].browse(run["invoice_ids"]).filtered(
            lambda move: str(move.invoice_date) == "2022-05-31")
        amounts = {
            rule: [line.price_subtotal for line in may.invoice_line_ids if rule in line.name]
            for rule in ("Energy BASIC-M", "Energy GOLD-M")
        }
        # 10 kWh on 5 May at 0.50 (old plan), 10 kWh on 20 May at 1.00 (new plan).
        self.assertEqual(amounts, {"Energy BASIC-M": [5.0], "Energy GOLD-M": [10.0]})
        after = self.env["iot.usage.bucket"].search([("device_id.identifier", "=", "U-1"),
                                                      ("bucket_start", ">=", "2022-05-11")])
        self.assertEqual(after.contract_item_id, new_item)
