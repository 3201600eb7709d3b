from decimal import Decimal

from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestCalculatorPricing(TransactionCase):
    """Each pricing model against amounts computed by hand."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan = cls.env["product.template"].create({"name": "Pricing plan", "type": "service"})
        cls.metric = cls.env.ref("iot_usage.metric_kwh")
        cls.eur = cls.env.ref("base.EUR")
        cls.eur.active = True

    def _calculator(self, **vals):
        vals.setdefault("name", "Rule")
        vals.setdefault("product_tmpl_id", self.plan.id)
        vals.setdefault("metric_id", self.metric.id)
        return self.env["iot.usage.calculator"].create(vals)

    def _price(self, calculator, quantity):
        return calculator._price(Decimal(quantity), self.eur)

    def test_per_unit_micro_price_rounds_once_to_the_cent(self):
        rule = self._calculator(pricing="per_unit", unit_price=0.00005)
        self.assertEqual(self._price(rule, "12345.678"), Decimal("0.62"))  # 0.6172839
        self.assertEqual(self._price(rule, "100000"), Decimal("5.00"))
        self.assertEqual(self._price(rule, "99"), Decimal("0.00"))  # 0.00495
        self.assertEqual(self._price(rule, "100"), Decimal("0.01"))  # 0.005 rounds half up

    def test_included_quantity_and_minimum(self):
        rule = self._calculator(pricing="per_unit", unit_price=0.5, included_quantity=10, minimum_amount=2)
        self.assertEqual(self._price(rule, "8"), Decimal("2.00"), "allowance covers it: the minimum applies")
        self.assertEqual(self._price(rule, "13"), Decimal("2.00"), "3 x 0.5 = 1.50 < minimum")
        self.assertEqual(self._price(rule, "20"), Decimal("5.00"))

    def test_graduated_tiers_at_their_boundaries(self):
        rule = self._calculator(pricing="graduated", tier_ids=[
            (0, 0, {"from_quantity": 0, "unit_price": 1.0}),
            (0, 0, {"from_quantity": 100, "unit_price": 0.5}),
            (0, 0, {"from_quantity": 1000, "unit_price": 0.1, "flat_fee": 10}),
        ])
        self.assertEqual(self._price(rule, "100"), Decimal("100.00"))
        self.assertEqual(self._price(rule, "101"), Decimal("100.50"))
        self.assertEqual(self._price(rule, "1000"), Decimal("550.00"))
        self.assertEqual(self._price(rule, "1001"), Decimal("560.10"))  # 550 + 0.1 + 10 fee

    def test_volume_tiers_price_every_unit_at_the_reached_tier(self):
        rule = self._calculator(pricing="volume", tier_ids=[
            (0, 0, {"from_quantity": 0, "unit_price": 1.0}),
            (0, 0, {"from_quantity": 100, "unit_price": 0.5}),
        ])
        self.assertEqual(self._price(rule, "100"), Decimal("100.00"))
        self.assertEqual(self._price(rule, "101"), Decimal("50.50"))
        self.assertEqual(self._price(rule, "0"), Decimal("0.00"))

    def test_package_and_flat(self):
        package = self._calculator(pricing="package", unit_price=5, package_size=1000)
        self.assertEqual(self._price(package, "1"), Decimal("5.00"))
        self.assertEqual(self._price(package, "1000"), Decimal("5.00"))
        self.assertEqual(self._price(package, "1000.000001"), Decimal("10.00"))
        self.assertEqual(self._price(package, "0"), Decimal("0.00"))
        flat = self._calculator(pricing="flat", unit_price=9.99, included_quantity=50)
        self.assertEqual(self._price(flat, "50"), Decimal("0.00"))
        self.assertEqual(self._price(flat, "50.5"), Decimal("9.99"))

    def test_rule_must_be_complete(self):
        with self.assertRaises(ValidationError):
            self._calculator(pricing="graduated")
        with self.assertRaises(ValidationError):
            self._calculator(aggregation="count_unique")
        with self.assertRaises(ValidationError):
            self._calculator(product_tmpl_id=False)
        with self.assertRaises(ValidationError):
            self._calculator(source="event", metric_id=False, event_type="door_open", aggregation="sum")
        with self.assertRaises(ValidationError):
            self._calculator(rounding="reading", pricing="package", package_size=10)
