from odoo.tests import freeze_time, tagged

from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestUsageBilling(IotUsageCommon):
    """The seed example: a reading of 12 on 14 April, valued by the plan's rule at the April run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan = cls._create_plan("Metered Fleet Plan", "METERED", 15.0)
        cls.calculator = cls.env["iot.usage.calculator"].create(
            {"name": "Energy", "product_tmpl_id": cls.plan.product_tmpl_id.id, "metric_id": cls.metric_kwh.id,
             "pricing": "per_unit", "unit_price": 0.5}
        )
        cls.contract = cls.env["iot.contract"].create(
            {"name": "Metered Contract", "reference": "METERED-1", "partner_id": cls.customer.id}
        )
        if "invoice_grouping" in cls.contract._fields:
            # iot_invoice_grouping, when installed, merges lines; these tests read one line per part.
            cls.contract.invoice_grouping = "none"
        cls.contract.action_start()
        result = cls.env["iot_billing.device"].api_activate(
            [{"identifier": "U-%d" % number, "contract": "METERED-1", "plan": "METERED",
              "date_start": "2022-04-01"} for number in (1, 2)]
        )
        assert all("error" not in entry for entry in result), result
        cls.item_1 = cls.device_1.contract_item_ids
        cls.april_1 = cls.item_1.schedule_ids.filtered(lambda s: str(s.date_from) == "2022-04-01")
        cls.may_1 = cls.item_1.schedule_ids.filtered(lambda s: str(s.date_from) == "2022-05-01")

    def test_seed_example_april_run(self):
        self.api.api_ingest([
            self._reading(quantity="12", timestamp="2022-04-14T09:00:00Z", message_id="seed-1"),
            self._reading(quantity="3", timestamp="2022-05-02T09:00:00Z", message_id="may-1"),
            self._reading(identifier="U-2", quantity="1.5", timestamp="2022-04-30T23:59:59Z", message_id="u2"),
        ])
        result = self._run("2022-04-30")
        self.assertFalse(result["errors"])
        self.assertEqual(self.april_1.usage_quantity, 12)
        self.assertEqual(self.april_1.usage_amount, 6.0)
        self.assertEqual(self.april_1.amount_total, 21.0)
        self.assertEqual(self.april_1.state, "invoiced")
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.partner_id, self.customer)
        usage_lines = invoice.invoice_line_ids.filtered(lambda line: "Energy" in line.name)
        self.assertEqual(len(usage_lines), 2)
        line_1 = usage_lines.filtered(lambda line: "U-1" in line.name)
        self.assertEqual((line_1.quantity, line_1.price_unit, line_1.price_subtotal), (12.0, 0.5, 6.0))
        self.assertIn("12 ", line_1.name)
        # 2 devices x 15.00 fixed + 6.00 + 0.75 usage
        self.assertAlmostEqual(invoice.amount_untaxed, 36.75, places=2)
        self.assertEqual(
            invoice.amount_untaxed,
            sum(self.item_1.contract_id.item_ids.schedule_ids.filtered(
                lambda s: s.state == "invoiced").mapped("amount_total")),
        )
        seed = self._bucket_at("2022-04-14T09:00:00Z")
        self.assertEqual((seed.state, seed.schedule_id, seed.quantity_sum), ("invoiced", self.april_1, 12))
        may = self._bucket_at("2022-05-02T09:00:00Z")
        self.assertEqual(may.state, "to_value", "May's usage waits for May's run")

    def test_late_reading_goes_to_the_next_open_schedule(self):
        self.api.api_ingest([self._reading(quantity="10", timestamp="2022-04-10T00:00:00Z")])
        self._run("2022-04-30")
        self.assertEqual(self.april_1.usage_quantity, 10)
        # Arrives after April was invoiced, measured in April.
        self.api.api_ingest([
            self._reading(quantity="4", timestamp="2022-04-29T12:00:00Z", message_id="late"),
            self._reading(quantity="1", timestamp="2022-05-10T12:00:00Z", message_id="in-may"),
        ])
        self._run("2022-05-31")
        late = self._bucket_at("2022-04-29T12:00:00Z")
        self.assertEqual((late.schedule_id, late.is_late, late.state), (self.may_1, True, "invoiced"))
        self.assertEqual(self.may_1.usage_quantity, 5)
        self.assertEqual(self.april_1.usage_quantity, 10, "an invoiced period never changes")

    def test_rerun_values_and_invoices_nothing_twice(self):
        self.api.api_ingest([self._reading(quantity="2", timestamp="2022-04-03T00:00:00Z")])
        first = self._run("2022-04-30")
        second = self._run("2022-04-30")
        self.assertTrue(first["invoice_ids"])
        self.assertFalse(second["invoice_ids"])
        self.assertEqual(len(self.april_1.valuation_ids), 1)

    def test_daily_cron_waits_for_the_grace_days(self):
        self.env.company.iot_usage_grace_days = 2
        self.api.api_ingest([self._reading(quantity="4", timestamp="2022-04-30T22:00:00Z", message_id="late-april")])
        earlier_runs = self.env["iot.billing.run"].search([])
        for day in ("2022-04-30", "2022-05-01", "2022-05-02", "2022-05-03"):
            with freeze_time(day):
                self.env["iot.billing.run"]._cron_run_billing()
        # April (invoice date 30 April) is billed on 2 May, grace included; no run before nor after.
        runs = self.env["iot.billing.run"].search([("id", "not in", earlier_runs.ids)])
        self.assertEqual([str(day) for day in runs.mapped("date")], ["2022-05-02"])
        self.assertEqual((self.april_1.state, self.april_1.usage_quantity), ("invoiced", 4))
        self.assertEqual(self.may_1.state, "planned")

    def test_readings_outside_any_item_are_rejected_then_reprocessable(self):
        self.api.api_ingest([
            self._reading(quantity="9", timestamp="2022-03-15T00:00:00Z", message_id="before"),
            self._reading(identifier="U-3", quantity="9", timestamp="2022-04-15T00:00:00Z", message_id="u3"),
        ])
        self._run("2022-04-30")
        before = self._bucket_at("2022-03-15T00:00:00Z")
        u3 = self._bucket_at("2022-04-15T00:00:00Z", device=self.device_3)
        self.assertEqual(set((before | u3).mapped("state")), {"rejected"})
        self.assertEqual(set((before | u3).mapped("reject_reason")), {"outside any active contract item"})
        self.env["iot_billing.device"].api_activate(
            [{"identifier": "U-3", "contract": "METERED-1", "plan": "METERED", "date_start": "2022-04-01"}]
        )
        u3.action_reprocess()
        self.assertEqual(u3.state, "to_value")
        self.assertEqual(before.state, "rejected")
        self._run("2022-04-30")
        self.assertEqual((u3.state, u3.schedule_id.device_id), ("invoiced", self.device_3))

    def test_item_calculators_override_the_plan_and_events_count_as_usage(self):
        self.env["iot.usage.calculator"].create([
            {"name": "Door openings", "contract_item_id": self.item_1.id, "source": "event",
             "event_type": "door_open", "aggregation": "count", "pricing": "per_unit", "unit_price": 0.25},
            {"name": "Peak power", "contract_item_id": self.item_1.id, "metric_id": self.metric_kwh.id,
             "aggregation": "max", "pricing": "per_unit", "unit_price": 1},
        ])
        self.env["iot_billing.device"].api_post_events([
            {"identifier": "U-1", "event_type": "door_open", "timestamp": "2022-04-%02dT08:00:00Z" % day}
            for day in (1, 2, 3)
        ])
        self.api.api_ingest([self._reading(quantity=q) for q in ("2", "7", "3")])
        self._run("2022-04-30")
        amounts = {v.calculator_id.name: (v.quantity, v.amount) for v in self.april_1.valuation_ids}
        self.assertEqual(amounts, {"Door openings": (3.0, 0.75), "Peak power": (7.0, 7.0)})
        self.assertEqual(self.april_1.usage_amount, 7.75)

    def test_each_aggregation_in_the_test_wizard(self):
        expected = {"sum": 12, "count": 3, "max": 7, "last": 3, "avg": 4, "count_unique": 2}
        # The rules exist before the readings arrive: the buckets keep what 'count_unique' needs.
        rules = self.env["iot.usage.calculator"].create([
            {"name": aggregation, "product_tmpl_id": self.plan.product_tmpl_id.id,
             "metric_id": self.metric_kwh.id, "aggregation": aggregation, "payload_key": "sim",
             "pricing": "per_unit", "unit_price": 2}
            for aggregation in expected
        ])
        self.api.api_ingest([
            self._reading(quantity="2", timestamp="2022-04-01T00:00:00Z", payload={"sim": "A"}),
            self._reading(quantity="7", timestamp="2022-04-20T00:00:00Z", payload={"sim": "B"}),
            self._reading(quantity="3", timestamp="2022-04-30T23:00:00Z", payload={"sim": "A"}),
            self._reading(quantity="100", timestamp="2022-05-01T00:00:00Z"),
        ])
        for rule, (aggregation, quantity) in zip(rules, expected.items(), strict=True):
            wizard = self.env["iot.usage.calculator.test.wizard"].create(
                {"calculator_id": rule.id, "device_id": self.device_1.id,
                 "date_from": "2022-04-01", "date_to": "2022-04-30"}
            )
            with self.subTest(aggregation=aggregation):
                self.assertEqual(wizard.quantity, quantity)
                self.assertEqual(wizard.amount, quantity * 2)
                self.assertEqual(wizard.reading_count, 3)
        self.assertFalse(self.env["account.move"].search([("partner_id", "=", self.customer.id)]))

    def test_update_usage_shows_the_running_period_without_invoicing(self):
        self.api.api_ingest([self._reading(quantity="8", timestamp="2022-04-05T00:00:00Z")])
        with freeze_time("2022-04-10"):
            self.contract.action_iot_value_usage()
        self.assertEqual((self.april_1.usage_quantity, self.april_1.usage_amount), (8, 4.0))
        self.assertEqual(self.april_1.state, "planned")
        self.assertFalse(self.may_1.valuation_ids, "a period that has not started is not valued")
        # More readings later in the month: the run values everything again.
        self.api.api_ingest([self._reading(quantity="2", timestamp="2022-04-25T00:00:00Z")])
        invoice = self.env["account.move"].browse(self._run("2022-04-30")["invoice_ids"])
        self.assertEqual(self.april_1.usage_quantity, 10)
        self.assertIn(self.april_1, invoice.iot_schedule_ids)
