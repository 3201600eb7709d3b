from odoo import Command
from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import freeze_time, tagged


@tagged("post_install", "-at_install")
class TestRuleWizardMatchesBilling(IotContractCommon):
    """The 'Test a usage rule' wizard and the billing run measure and price with one method:
    for the same readings they give the same quantity, count and amount, whatever the rule."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if "invoice_grouping" in cls.contract._fields:
            cls.contract.invoice_grouping = "none"
        cls.kwh = cls.env.ref("iot_usage.metric_kwh")
        Calculator = cls.env["iot.usage.calculator"]
        template = cls.plan.product_tmpl_id
        common = {"product_tmpl_id": template.id, "metric_id": cls.kwh.id}
        cls.rules = {
            "sum": Calculator.create(dict(common, name="Sum", pricing="per_unit", unit_price=0.123456)),
            "avg": Calculator.create(dict(common, name="Average", aggregation="avg", unit_price=1.1)),
            "max": Calculator.create(dict(common, name="Peak", aggregation="max", unit_price=0.7,
                                          included_quantity=2)),
            "last": Calculator.create(dict(common, name="Index", aggregation="last", unit_price=0.01)),
            "count_unique": Calculator.create(dict(common, name="Sites", aggregation="count_unique",
                                                   payload_key="site", unit_price=3)),
            "graduated": Calculator.create(dict(
                common, name="Tiers", pricing="graduated", minimum_amount=1.0,
                tier_ids=[Command.create({"from_quantity": 0, "unit_price": 0.5}),
                          Command.create({"from_quantity": 10, "unit_price": 0.25, "flat_fee": 2})],
            )),
            "reading": Calculator.create(dict(common, name="Per reading", unit_price=0.333, rounding="reading")),
        }

    def test_same_quantity_count_and_amount(self):
        device = self._pending_device("WZ-1")
        self._activate(device)
        # Avg of 3.333333, 7.1, 11.25 and 0.5 has more than six decimals: both round it alike.
        readings = [("3.333333", "2022-04-03T10:00:00Z", "a"), ("7.1", "2022-04-09T00:00:00Z", "b"),
                    ("11.25", "2022-04-20T08:30:00Z", "a"), ("0.5", "2022-04-30T23:59:59Z", "c")]
        result = self.env["iot.usage"].with_user(self.integration_user).api_ingest([
            {"identifier": "WZ-1", "metric": "kwh", "quantity": quantity, "timestamp": timestamp,
             "message_id": "wz-%d" % number, "payload": {"site": site}}
            for number, (quantity, timestamp, site) in enumerate(readings)
        ])
        self.assertEqual(result["accepted"], 4)
        Wizard = self.env["iot.usage.calculator.test.wizard"]
        expected = {}
        for key, rule in self.rules.items():
            wizard = Wizard.create({"calculator_id": rule.id, "device_id": device.id,
                                    "date_from": "2022-04-01", "date_to": "2022-04-30"})
            expected[key] = (wizard.quantity, wizard.reading_count, wizard.amount)
        with freeze_time("2022-04-30"):
            billed = self._run_billing("2022-04-30")
        self.assertFalse(billed["errors"])
        april = device.contract_item_ids.schedule_ids.filtered(lambda s: str(s.date_from) == "2022-04-01")
        self.assertEqual(april.state, "invoiced")
        valuations = {valuation.calculator_id: valuation for valuation in april.valuation_ids}
        for key, rule in self.rules.items():
            with self.subTest(rule=key):
                valuation = valuations[rule]
                self.assertEqual(
                    (valuation.quantity, valuation.reading_count, valuation.amount), expected[key]
                )
        # The figures themselves, computed by hand from the four readings.
        self.assertEqual(expected["sum"], (22.183333, 4, 2.74))  # 22.183333 x 0.123456 = 2.7386...
        self.assertEqual(expected["avg"], (5.545833, 4, 6.1))  # 5.545833 x 1.1 = 6.1004...
        self.assertEqual(expected["max"], (11.25, 4, 6.48))  # (11.25 - 2) x 0.7 = 6.475
        self.assertEqual(expected["last"], (0.5, 4, 0.01))  # 0.5 x 0.01 = 0.005 -> half up
        self.assertEqual(expected["count_unique"], (3.0, 4, 9.0))
        self.assertEqual(expected["graduated"], (22.183333, 4, 10.05))  # 5 + 2 + 12.183333 x 0.25
        # 1.11 + 2.36 + 3.75 + 0.17 (each reading x 0.333, rounded to the cent)
        self.assertEqual(expected["reading"], (22.183333, 4, 7.39))
