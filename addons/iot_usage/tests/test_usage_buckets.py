import random
import uuid
from decimal import Decimal

from odoo import SUPERUSER_ID, api
from odoo.addons.iot_usage.models.iot_usage_calculator import UsageScope, price_amount
from odoo.exceptions import UserError, ValidationError
from odoo.sql_db import db_connect
from odoo.tests import TransactionCase, freeze_time, tagged

from .common import IotUsageCommon

AGGREGATIONS = ("sum", "count", "max", "last", "avg", "count_unique")
PRICINGS = ("per_unit", "graduated", "volume", "package", "flat")

# The measure of each aggregation computed from the raw readings, as billing did before
# usage buckets: the reference the buckets must match.
RAW_MEASURE_SQL = """
    SELECT sum(quantity)::text, count(*), max(quantity)::text, round(avg(quantity), 6)::text,
           (array_agg(quantity ORDER BY timestamp DESC, id DESC))[1]::text,
           count(DISTINCT payload ->> 'sim'),
           sum(round(quantity * %(price)s / 0.01) * 0.01)::text
      FROM iot_usage
     WHERE device_id = %(device)s AND metric_id = %(metric)s
       AND timestamp >= %(start)s AND timestamp < %(stop)s
"""


@tagged("post_install", "-at_install")
class TestUsageBuckets(IotUsageCommon):
    """Billing reads usage buckets filled as readings arrive: the same figures as the raw readings."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan = cls._create_plan("Bucket Plan", "BUCKETS", 10.0)
        cls.contract = cls.env["iot.contract"].create(
            {"name": "Bucket Contract", "reference": "BUCKETS-1", "partner_id": cls.customer.id, "tz": "UTC"}
        )
        cls.contract.action_start()
        result = cls.env["iot_billing.device"].api_activate(
            [{"identifier": "U-%d" % number, "contract": "BUCKETS-1", "plan": "BUCKETS",
              "date_start": "2022-04-01"} for number in (1, 2, 3)]
        )
        assert all("error" not in entry for entry in result), result

    def _rules(self):
        """One rule per aggregation and pricing model, and one rounding each reading's amount."""
        Calculator = self.env["iot.usage.calculator"]
        tiers = [(0, 0, {"from_quantity": 0, "unit_price": 0.37}),
                 (0, 0, {"from_quantity": 5, "unit_price": 0.21, "flat_fee": 1.5}),
                 (0, 0, {"from_quantity": 40, "unit_price": 0.07})]
        vals = [
            {"name": "%s %s" % (aggregation, pricing), "product_tmpl_id": self.plan.product_tmpl_id.id,
             "metric_id": self.metric_kwh.id, "aggregation": aggregation, "payload_key": "sim",
             "pricing": pricing, "unit_price": 0.333, "package_size": 7, "included_quantity": 2,
             "tier_ids": tiers if pricing in ("graduated", "volume") else []}
            for aggregation in AGGREGATIONS for pricing in PRICINGS
        ]
        vals.append({"name": "per reading", "product_tmpl_id": self.plan.product_tmpl_id.id,
                     "metric_id": self.metric_kwh.id, "aggregation": "sum", "pricing": "per_unit",
                     "unit_price": 0.333, "rounding": "reading"})
        return Calculator.create(vals)

    def _raw_measure(self, rule, device, start, stop):
        """Quantity, count and amount of ``rule`` computed from the raw readings."""
        self.env.cr.execute(RAW_MEASURE_SQL, {
            "price": Decimal("0.333"), "device": device.id, "metric": self.metric_kwh.id,
            "start": start, "stop": stop,
        })
        total, count, maximum, average, last, distinct, per_reading = self.env.cr.fetchone()
        quantity = Decimal({
            "sum": total, "count": str(count), "max": maximum, "avg": average, "last": last,
            "count_unique": str(distinct),
        }[rule.aggregation] or 0).quantize(Decimal("0.000001"))
        step = Decimal("0.01")
        reading_amounts = [Decimal(per_reading or 0)] if rule.rounding == "reading" else None
        return quantity, count, price_amount(rule._terms(), quantity, step, reading_amounts)

    def _random_readings(self, rng, count, days, prefix):
        readings = []
        for number in range(count):
            # Few distinct moments: many readings share a bucket and a timestamp (ties).
            day, hour, minute = rng.choice(days), rng.choice((0, 10, 23)), rng.choice((0, 15, 59))
            readings.append(self._reading(
                identifier=rng.choice(("U-1", "U-2", "U-3")),
                quantity=str(Decimal(rng.randrange(0, 5000)) / rng.choice((1, 10, 1000))),
                timestamp="2022-%s %02d:%02d:00Z" % (day, hour, minute),
                message_id="%s-%d" % (prefix, number),
                payload={"sim": rng.choice("ABCDE")} if rng.random() < 0.8 else None,
            ))
        return [{key: value for key, value in reading.items() if value is not None} for reading in readings]

    def test_randomized_buckets_match_raw_readings(self):
        """Every aggregation and pricing model, random readings in random batches (duplicates,
        equal timestamps, late arrivals after an invoice): buckets give the raw figures."""
        rules = self._rules()
        rng = random.Random(20261124)
        april = ["04-%02d" % day for day in (1, 2, 14, 29, 30)]
        may = ["05-%02d" % day for day in (1, 2, 31)]
        first = self._random_readings(rng, 300, april, "a")
        for start in range(0, len(first), 70):
            batch = first[start:start + 70]
            self.api.api_ingest(batch + rng.sample(batch, 5))  # duplicates, counted once
        self._run("2022-04-30")
        # April was invoiced; then more April readings (late: new buckets) and May's arrive.
        second = self._random_readings(rng, 200, april[-2:] + may, "b")
        for start in range(0, len(second), 60):
            self.api.api_ingest(second[start:start + 60])
        late = self.env["iot.usage.bucket"].search([("is_late", "=", False), ("state", "=", "to_value"),
                                                    ("bucket_start", "<", "2022-05-01")])
        self.assertTrue(late, "late readings formed new buckets beside the invoiced ones")

        Calculator = self.env["iot.usage.calculator"]
        windows = {"april": ("2022-04-01", "2022-04-30"), "both": ("2022-04-01", "2022-05-31")}
        windows = [(device, name, date_from, date_to) for device in (self.device_1, self.device_2, self.device_3)
                   for name, (date_from, date_to) in windows.items()]
        scopes = [
            UsageScope(key=key, calculators=rules, currency=self.env.company.currency_id,
                       device_id=device.id, date_from=date_from, date_to=date_to, schedule_id=False)
            for key, (device, _name, date_from, date_to) in enumerate(windows)
        ]
        measures = Calculator._evaluate(scopes)
        stops = {"april": "2022-05-01", "both": "2022-06-01"}
        compared = 0
        for scope in scopes:
            device, name, _from, _to = windows[scope.key]
            for rule in rules:
                expected = self._raw_measure(rule, device, "2022-04-01", stops[name])
                measure = measures[scope.key, rule.id]
                with self.subTest(rule=rule.name, device=device.identifier, window=name):
                    self.assertEqual((measure.quantity, measure.count, measure.amount), expected)
                compared += 1
        self.assertEqual(compared, 6 * len(rules))

    def test_a_late_reading_joins_its_open_bucket_or_forms_a_new_one(self):
        self.api.api_ingest([self._reading(quantity="2", timestamp="2022-04-14T10:05:00Z")])
        self.api.api_ingest([self._reading(quantity="3", timestamp="2022-04-14T10:01:00Z"),
                             self._reading(quantity="1", timestamp="2022-04-14T10:59:00Z")])
        bucket = self._bucket_at("2022-04-14T10:00:00Z")
        self.assertEqual(len(bucket), 1, "one open bucket per device, metric and hour")
        self.assertEqual(
            (bucket.reading_count, bucket.quantity_sum, bucket.quantity_min, bucket.quantity_max,
             bucket.first_quantity, bucket.last_quantity),
            (3, 6.0, 1.0, 3.0, 3.0, 1.0),
        )
        self._run("2022-04-30")
        self.assertEqual(bucket.state, "invoiced")
        self.api.api_ingest([self._reading(quantity="5", timestamp="2022-04-14T10:30:00Z")])
        both = self._bucket_at("2022-04-14T10:00:00Z")
        self.assertEqual(sorted(both.mapped("state")), ["invoiced", "to_value"])
        self.assertEqual(bucket.quantity_sum, 6.0, "an invoiced bucket never changes")

    def test_buckets_of_several_connections_merge_once_their_interval_is_over(self):
        rules = self._rules()
        self.api.api_ingest([self._reading(quantity="2", timestamp="2022-04-14T10:05:00Z", payload={"sim": "A"}),
                             self._reading(quantity="3", timestamp="2022-04-14T10:40:00Z", payload={"sim": "B"})])
        bucket = self._bucket_at("2022-04-14T10:00:00Z")
        # What another connection would have added to the same hour at the same time.
        self.env.cr.execute(
            """INSERT INTO iot_usage_bucket (company_id, device_id, metric_id, bucket_start, bucket_stop,
                   reading_count, quantity_sum, quantity_min, quantity_max, first_at, first_quantity, first_seq,
                   last_at, last_quantity, last_seq, distinct_values, quantity_counts, writer, state, is_late)
               SELECT company_id, device_id, metric_id, bucket_start, bucket_stop, 2, 9, 4, 5,
                      '2022-04-14 10:01:00', 4, first_seq - 1, '2022-04-14 10:40:00', 5, last_seq + 1,
                      '{"sim": ["B", "C"]}', '{"4.000000": 1, "5.000000": 1}', writer + 1, 'to_value', false
                 FROM iot_usage_bucket WHERE id = %s""", [bucket.id])
        self.env["iot.usage.bucket"].invalidate_model()
        scope = UsageScope(key=1, calculators=rules, currency=self.env.company.currency_id,
                           device_id=self.device_1.id, date_from="2022-04-01", date_to="2022-04-30", schedule_id=False)
        before = self.env["iot.usage.calculator"]._evaluate([scope])
        self.assertEqual(self.env["iot.usage.bucket"]._cron_compact(), 1)
        merged = self._bucket_at("2022-04-14T10:00:00Z")
        self.assertEqual(len(merged), 1)
        self.assertEqual(
            (merged.reading_count, merged.quantity_sum, merged.quantity_min, merged.first_quantity,
             merged.last_quantity, sorted(merged.distinct_values["sim"]), merged.quantity_counts),
            (4, 14.0, 2.0, 4.0, 5.0, ["A", "B", "C"],
             {"2.000000": 1, "3.000000": 1, "4.000000": 1, "5.000000": 1}),
        )
        self.assertEqual(self.env["iot.usage.calculator"]._evaluate([scope]), before, "same figures, fewer rows")
        self.assertEqual(self.env["iot.usage.bucket"]._cron_compact(), 0, "nothing left to merge")

    def test_an_undone_invoice_sends_its_buckets_back_even_several_of_one_hour(self):
        self.env["iot.usage.calculator"].create({
            "name": "Energy", "product_tmpl_id": self.plan.product_tmpl_id.id, "metric_id": self.metric_kwh.id,
            "pricing": "per_unit", "unit_price": 1})
        self.api.api_ingest([self._reading(quantity="2", timestamp="2022-04-14T10:05:00Z")])
        with freeze_time("2022-04-20"):
            self.contract.action_iot_value_usage()  # Update usage: the hour's bucket is valued
        self.api.api_ingest([self._reading(quantity="3", timestamp="2022-04-14T10:30:00Z")])
        hour = self._bucket_at("2022-04-14T10:00:00Z")
        self.assertEqual(sorted(hour.mapped("state")), ["to_value", "valued"], "two buckets of one hour")
        invoice = self.env["account.move"].browse(self._run("2022-04-30")["invoice_ids"])
        april = self.device_1.contract_item_ids.schedule_ids.filtered(lambda s: str(s.date_from) == "2022-04-01")
        self.assertEqual((april.usage_quantity, set(hour.mapped("state"))), (5, {"invoiced"}))
        invoice.button_cancel()
        self.assertEqual(set(hour.mapped("state")), {"to_value"})
        again = self.env["account.move"].browse(self._run("2022-04-30")["invoice_ids"])
        self.assertEqual((april.usage_quantity, april.usage_amount), (5, 5.0))
        self.assertEqual(again.amount_untaxed, invoice.amount_untaxed, "billed again, once")

    def test_gateway_aggregates_go_straight_into_buckets(self):
        aggregate = {
            "identifier": "U-1", "metric": "kwh", "count": 60, "sum": "120.5", "min": "1", "max": "3",
            "first": "2", "last": "1.5", "timestamp_from": "2022-04-14T10:00:00Z",
            "timestamp_to": "2022-04-14T10:59:00Z", "message_id": "gw-1",
        }
        bad = [
            dict(aggregate, message_id="gw-2", timestamp_to="2022-04-14T11:00:00Z"),
            dict(aggregate, message_id="gw-3", sum="500"),
            dict(aggregate, message_id="gw-4", first="9"),
            dict(aggregate, message_id="gw-5", count=0),
            dict(aggregate, message_id="gw-6", metric="nope"),
        ]
        result = self.api.api_ingest_aggregates([aggregate, *bad])
        self.assertEqual((result["accepted"], result["duplicates"]), (1, 0))
        reasons = [item["reason"] for item in result["rejected"]]
        self.assertEqual([item["index"] for item in result["rejected"]], [1, 2, 3, 4, 5])
        self.assertRegex(reasons[0], "spans more than one hour")
        self.assertRegex(reasons[1], "'sum' must lie between")
        self.assertRegex(reasons[2], "between 'min' and 'max'")
        self.assertRegex(reasons[3], "positive integer")
        self.assertRegex(reasons[4], "unknown metric")
        one_o_clock = dict(aggregate, message_id="gw-9", timestamp_from="2022-04-14T13:00:00Z",
                           timestamp_to="2022-04-14T13:00:00Z")
        twice = self.api.api_ingest_aggregates([one_o_clock, one_o_clock])
        self.assertEqual((twice["accepted"], twice["duplicates"]), (1, 1))
        self.assertEqual(self._bucket_at("2022-04-14T13:00:00Z").reading_count, 60, "counted once")
        again = self.api.api_ingest_aggregates([aggregate])
        self.assertEqual((again["accepted"], again["duplicates"]), (0, 1), "idempotent by message id")
        # A reading of the same hour joins the aggregate's bucket.
        self.api.api_ingest([self._reading(quantity="4", timestamp="2022-04-14T10:59:30Z")])
        bucket = self._bucket_at("2022-04-14T10:30:00Z")
        self.assertEqual(
            (bucket.reading_count, bucket.quantity_sum, bucket.quantity_max, bucket.first_quantity,
             bucket.last_quantity),
            (61, 124.5, 4.0, 2.0, 4.0),
        )
        # api_ingest takes aggregates mixed with readings (the bridge sends both that way).
        mixed = self.api.api_ingest([
            self._reading(quantity="1", timestamp="2022-04-14T11:00:00Z"),
            dict(aggregate, message_id="gw-7", timestamp_from="2022-04-14T12:00:00Z",
                 timestamp_to="2022-04-14T12:30:00Z"),
            dict(aggregate, message_id="gw-8", count="two"),
        ])
        self.assertEqual(mixed, {"accepted": 2, "duplicates": 0,
                                 "rejected": [{"index": 2, "reason": "'count' must be a positive integer"}]})
        self.assertEqual(self._bucket_at("2022-04-14T12:00:00Z").reading_count, 60)
        rule = self.env["iot.usage.calculator"].create({
            "name": "Energy", "product_tmpl_id": self.plan.product_tmpl_id.id, "metric_id": self.metric_kwh.id,
            "pricing": "per_unit", "unit_price": 0.1})
        self._run("2022-04-30")
        april = self.device_1.contract_item_ids.schedule_ids.filtered(lambda s: str(s.date_from) == "2022-04-01")
        # 10:00 124.5 + 11:00 1 + 12:00 120.5 + 13:00 120.5 kWh at 0.10
        self.assertEqual(april.valuation_ids.filtered(lambda v: v.calculator_id == rule).amount, 36.65)

    def test_a_rule_needing_each_reading_refuses_aggregates_and_older_buckets(self):
        self.api.api_ingest([self._reading(quantity="2", payload={"sim": "A"})])
        rule = self.env["iot.usage.calculator"].create({
            "name": "SIMs", "product_tmpl_id": self.plan.product_tmpl_id.id, "metric_id": self.metric_kwh.id,
            "aggregation": "count_unique", "payload_key": "sim", "pricing": "per_unit", "unit_price": 1})
        wizard = self.env["iot.usage.calculator.test.wizard"].new(
            {"calculator_id": rule.id, "device_id": self.device_1.id,
             "date_from": "2022-04-01", "date_to": "2022-04-30"})
        with self.assertRaisesRegex(UserError, "arrived before the rule existed"):
            wizard._evaluate()
        result = self.api.api_ingest_aggregates([{
            "identifier": "U-1", "metric": "kwh", "count": 1, "sum": "1", "min": "1", "max": "1", "first": "1",
            "last": "1", "timestamp_from": "2022-04-15T10:00:00Z", "timestamp_to": "2022-04-15T10:00:00Z",
            "message_id": "gw-sim"}])
        self.assertRegex(result["rejected"][0]["reason"], "need each reading")

    def test_time_zones_must_keep_their_midnights_on_the_bucket_grid(self):
        with self.assertRaisesRegex(ValidationError, "Asia/Kolkata"):
            self.env["iot.contract"].create(
                {"name": "Pune", "reference": "PUNE-1", "partner_id": self.customer.id, "tz": "Asia/Kolkata"})
        self.env["iot.contract"].create(
            {"name": "Oslo", "reference": "OSLO-1", "partner_id": self.customer.id, "tz": "Europe/Oslo"})
        with self.assertRaisesRegex(ValidationError, "Europe/Oslo"):
            self.metric_messages.bucket_interval = "day"
        self.api.api_ingest([self._reading(quantity="1")])
        with self.assertRaisesRegex(ValidationError, "already has usage"):
            self.metric_kwh.bucket_interval = "minute"


@tagged("post_install", "-at_install")
class TestConcurrentIngestion(TransactionCase):
    """Two ingestion transactions at once, on real connections (outside the test transaction)."""

    def test_concurrent_batches_of_the_same_buckets_neither_wait_nor_fail(self):
        identifier = "CONCURRENT-%s" % uuid.uuid4().hex[:8]
        database = db_connect(self.env.cr.dbname)
        setup = database.cursor()
        first, second = database.cursor(), database.cursor()
        try:
            setup_env = api.Environment(setup, SUPERUSER_ID, {})
            setup_env["iot_billing.device"].api_register([{"identifier": identifier}])
            setup.commit()

            def batch(env, tag):
                return env["iot.usage"].api_ingest([
                    {"identifier": identifier, "metric": "kwh", "quantity": "1.5", "message_id": "%s-%d" % (tag, n),
                     "timestamp": "2022-04-14T10:%02d:00Z" % n} for n in range(10)])

            batch(api.Environment(first, SUPERUSER_ID, {}), "first")
            # The first transaction is still open and holds its bucket: the second would wait for
            # it (then fail to serialize) if both added to the same row.
            second.execute("SET LOCAL lock_timeout = '2s'")
            result = batch(api.Environment(second, SUPERUSER_ID, {}), "second")
            self.assertEqual(result["accepted"], 10)
            second.commit()
            first.commit()
            setup.execute("""SELECT count(*), sum(reading_count), sum(quantity_sum)::text FROM iot_usage_bucket b
                               JOIN iot_billing_device d ON d.id = b.device_id WHERE d.identifier = %s""", [identifier])
            self.assertEqual(setup.fetchone(), (2, 20, "30.000000"))
        finally:
            for cursor in (first, second):
                cursor.rollback()
                cursor.close()
            setup.execute("SELECT id FROM iot_billing_device WHERE identifier = %s", [identifier])
            device_ids = [row[0] for row in setup.fetchall()]
            for table in ("iot_usage_bucket", "iot_usage"):
                setup.execute("DELETE FROM %s WHERE device_id = ANY(%%s)" % table, [device_ids])
            setup.execute("DELETE FROM iot_billing_device WHERE id = ANY(%s)", [device_ids])
            setup.commit()
            setup.close()
