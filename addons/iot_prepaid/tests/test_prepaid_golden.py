from decimal import Decimal

from odoo.tests import tagged

from .common import IotPrepaidCommon, tiers

# One rule of each pricing model, with included quantities, minimums, tiers crossed over
# several batches, aggregations that go down (average) and rounding per reading.
RULES = [
    dict(name="per unit", pricing="per_unit", unit_price=0.37, included_quantity=5, minimum_amount=3.0),
    dict(name="graduated", pricing="graduated", included_quantity=2,
         tier_ids=tiers((0, 0.5, 0), (10, 0.3, 1.0), (30, 0.1, 0))),
    dict(name="volume", pricing="volume", tier_ids=tiers((0, 0.6, 0), (15, 0.4, 0), (40, 0.25, 2.0))),
    dict(name="package", pricing="package", package_size=7, unit_price=1.1),
    dict(name="flat", pricing="flat", unit_price=9.99, included_quantity=20),
    dict(name="average", pricing="per_unit", aggregation="avg", unit_price=0.77),
    dict(name="peak", pricing="graduated", aggregation="max", tier_ids=tiers((0, 0.2, 0), (6, 0.9, 0))),
    dict(name="per reading", pricing="per_unit", rounding="reading", unit_price=0.333),
    dict(name="minimum only", pricing="per_unit", unit_price=0.01, minimum_amount=4.0),
]
# Four batches over April: the period-to-date quantity crosses every tier.
BATCHES = [
    [("2022-04-10T08:00:00Z", "3.5"), ("2022-04-10T09:00:00Z", "1.25")],
    [("2022-04-12T08:00:00Z", "7"), ("2022-04-13T08:00:00Z", "0.333")],
    [("2022-04-20T08:00:00Z", "12.4"), ("2022-04-21T08:00:00Z", "2")],
    [("2022-04-29T22:00:00Z", "16.75")],
]


@tagged("post_install", "-at_install")
class TestPrepaidGolden(IotPrepaidCommon):
    """The golden rule: the same readings rated prepaid (as they arrive, batch after batch)
    and postpaid (at the billing run) give the same amounts to the cent, rule by rule."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan = cls._create_plan("Golden Plan", "GOLDEN", 12.0, cls.tax_10)
        cls.rules = cls.env["iot.usage.calculator"].create([
            {"product_tmpl_id": cls.plan.product_tmpl_id.id, "metric_id": cls.metric_kwh.id, **rule} for rule in RULES
        ])
        cls.prepaid = cls._start_contract("Golden Prepaid", "GOLD-PRE", iot_prepaid="prepaid")
        cls.postpaid = cls._start_contract("Golden Postpaid", "GOLD-POST")
        for identifier in ("G-1", "G-2", "G-3", "G-4"):
            cls.Device.with_user(cls.integration_user).api_register(
                [{"identifier": identifier, "partner": cls.customer.id}])
        # A full month and a month from the 10th (included quantities and minimums prorated).
        cls._activate_devices(cls.prepaid, cls.plan, ["G-1"])
        cls._activate_devices(cls.prepaid, cls.plan, ["G-3"], date_start="2022-04-10")
        cls._activate_devices(cls.postpaid, cls.plan, ["G-2"])
        cls._activate_devices(cls.postpaid, cls.plan, ["G-4"], date_start="2022-04-10")
        cls.golden_wallet = cls.Wallet._for_contracts(cls.prepaid)

    def _april(self, identifier):
        device = self.Device.search([("identifier", "=", identifier)])
        return self._schedule(device.contract_item_ids, "2022-04-01") or self._schedule(
            device.contract_item_ids, "2022-04-10")

    def test_prepaid_equals_postpaid_to_the_cent_for_every_pricing_model(self):
        self._grant(1000.0, wallet=self.golden_wallet)
        pairs = (("G-1", "G-2"), ("G-3", "G-4"))
        debited_after_batch = []
        for number, batch in enumerate(BATCHES):
            self._ingest([
                self._reading(identifier=identifier, quantity=quantity, timestamp=timestamp,
                              message_id="%s-%d-%d" % (identifier, number, position))
                for pair in pairs for identifier in pair
                for position, (timestamp, quantity) in enumerate(batch)
            ])
            debited_after_batch.append(self._debited(self._april("G-1")))
        self.assertEqual(len(set(debited_after_batch)), len(BATCHES), "each batch debits the difference")
        result = self._run("2022-04-30")
        self.assertFalse(result["errors"])
        Valuation = self.env["iot.usage.valuation"]
        for prepaid_id, postpaid_id in pairs:
            prepaid, postpaid = self._april(prepaid_id), self._april(postpaid_id)
            self.assertEqual((prepaid.state, postpaid.state), ("invoiced", "invoiced"))
            for rule in self.rules:
                billed = Valuation.search([("schedule_id", "=", postpaid.id), ("calculator_id", "=", rule.id)])
                prepaid_billed = Valuation.search([("schedule_id", "=", prepaid.id), ("calculator_id", "=", rule.id)])
                expected = Decimal(str(billed.amount))
                self.assertGreater(expected, 0, "%s bills something on %s" % (rule.name, postpaid_id))
                self.assertEqual(self._debited(prepaid, rule), expected,
                                 "%s, %s: debits = postpaid amount" % (rule.name, prepaid_id))
                self.assertEqual(Decimal(str(prepaid_billed.amount)), expected, rule.name)
        self.assertLedgerConsistent(self.golden_wallet)
        # The prepaid invoice bills the same usage, less the credit that paid it.
        invoices = self.env["account.move"].browse(result["invoice_ids"])
        prepaid_invoice = invoices.filtered(lambda move: "G-1" in " ".join(move.invoice_line_ids.mapped("name")))
        postpaid_invoice = invoices.filtered(lambda move: "G-2" in " ".join(move.invoice_line_ids.mapped("name")))
        credit_lines = prepaid_invoice.invoice_line_ids.filtered(lambda line: line.price_subtotal < 0)
        spent = self._debited(self._april("G-1")) + self._debited(self._april("G-3"))
        self.assertEqual(Decimal(str(-sum(credit_lines.mapped("price_subtotal")))).quantize(Decimal("0.01")), spent)
        self.assertEqual(
            prepaid_invoice.currency_id.compare_amounts(
                prepaid_invoice.amount_untaxed, postpaid_invoice.amount_untaxed - float(spent)), 0,
        )
        self.assertEqual(
            sorted(prepaid_invoice.invoice_line_ids.filtered(lambda line: line.price_subtotal > 0)
                   .mapped("price_subtotal")),
            sorted(postpaid_invoice.invoice_line_ids.mapped("price_subtotal")),
        )
