"""Raw readings in daily partitions: created ahead, exported then dropped after the
retention window; what was billed on them stays as it was (issue 13)."""

import csv
import datetime
import gzip
import io
import threading
import time
import uuid
from contextlib import closing

from dateutil.relativedelta import relativedelta
from lxml import etree

from odoo import SUPERUSER_ID, api
from odoo.sql_db import db_connect
from odoo.tests import TransactionCase, freeze_time, tagged
from odoo.tools.safe_eval import safe_eval

from ..tools import drop_partition, ensure_partitions, partition_days, partition_name
from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestUsagePartitions(IotUsageCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Archive = cls.env["iot.usage.archive"]
        plan = cls._create_plan("Partitioned Plan", "PARTITIONED", 15.0)
        cls.env["iot.usage.calculator"].create(
            {"name": "Energy", "product_tmpl_id": plan.product_tmpl_id.id, "metric_id": cls.metric_kwh.id,
             "pricing": "per_unit", "unit_price": 0.5}
        )
        contract = cls.env["iot.contract"].create(
            {"name": "Partitioned Contract", "reference": "PART-1", "partner_id": cls.customer.id}
        )
        if "invoice_grouping" in contract._fields:
            contract.invoice_grouping = "none"
        contract.action_start()
        cls.Device.api_activate([{"identifier": "U-1", "contract": "PART-1", "plan": "PARTITIONED",
                                  "date_start": "2022-04-01"}])
        cls.april = cls.device_1.contract_item_ids.schedule_ids.filtered(
            lambda schedule: str(schedule.date_from) == "2022-04-01")

    def _exists(self, day):
        self.env.cr.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(day)])
        return self.env.cr.fetchone()[0]

    def _rotate(self, day):
        with freeze_time(day):
            for _partition in range(400):  # what the cron's progress loop does, without commits
                self.Archive._cron_rotate_partitions()
                if not self.Archive._days_past_retention(datetime.date.fromisoformat(day)):
                    return

    def test_a_reading_of_a_day_without_partition_gets_one(self):
        # A day no other test used (the partition is committed on its own, see below).
        day = datetime.date(2001, 1, 1)
        while self._exists(day):
            day += datetime.timedelta(days=1)
        result = self.api.api_ingest([self._reading(timestamp="%sT23:59:59Z" % day, message_id="old")])
        self.assertEqual(result["accepted"], 1)
        self.assertTrue(self._exists(day))
        self.env.cr.execute("SELECT count(*) FROM %s" % partition_name(day))
        self.assertEqual(self.env.cr.fetchone()[0], 1, "stored in its day's partition")
        # Created in a transaction of its own: another connection sees it before this commits.
        with closing(db_connect(self.env.cr.dbname).cursor()) as other:
            other.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(day)])
            self.assertTrue(other.fetchone()[0])

    def test_cron_prepares_the_days_ahead(self):
        self._rotate("2031-03-01")
        days = partition_days(self.env.cr)
        for offset in range(8):
            self.assertIn(datetime.date(2031, 3, 1) + datetime.timedelta(days=offset), days)
        self.assertEqual(min(days), datetime.date(2031, 3, 1), "every older (empty) day was dropped")
        self.assertFalse(self.Archive.search([]), "nothing to export: the dropped days were empty")

    def test_drop_after_retention_exports_first_and_keeps_what_was_billed(self):
        self.api.api_ingest([
            self._reading(quantity="12.5", timestamp="2022-04-14T09:00:00Z", message_id="a-1",
                          payload={"volt": 231}),
            self._reading(quantity="0.000001", timestamp="2022-04-14T23:00:00Z", message_id="a-2"),
            self._reading(quantity="3", timestamp="2022-06-20T09:00:00Z", message_id="june"),
        ])
        result = self._run("2022-04-30")
        invoice = self.env["account.move"].browse(result["invoice_ids"])
        billed = (invoice.amount_total, self.april.usage_quantity, self.april.usage_amount,
                  self.april.valuation_ids.mapped(lambda valuation: (valuation.quantity, valuation.amount)))
        self.assertEqual(self.april.usage_quantity, 12.500001)
        Bucket = self.env["iot.usage.bucket"]

        def buckets():
            return Bucket.search([("device_id", "=", self.device_1.id)], order="bucket_start").mapped(
                lambda bucket: (str(bucket.bucket_start), bucket.reading_count, bucket.quantity_sum, bucket.state))

        aggregated = buckets()
        self.assertEqual(len(aggregated), 3)

        # 90 days (the default window) after 14 April: that day goes, 20 June stays.
        self._rotate("2022-07-20")
        april_14 = datetime.date(2022, 4, 14)
        self.assertFalse(self._exists(april_14))
        self.assertTrue(self._exists(datetime.date(2022, 6, 20)))
        self.assertFalse(self.Usage.search_count([("message_id", "in", ("a-1", "a-2"))]), "gone with the partition")
        self.assertEqual(self.Usage.search_count([("message_id", "=", "june")]), 1)
        self.assertEqual(
            (invoice.amount_total, self.april.usage_quantity, self.april.usage_amount,
             self.april.valuation_ids.mapped(lambda valuation: (valuation.quantity, valuation.amount))),
            billed, "invoices and valuations do not read raw readings back",
        )
        self.assertEqual(buckets(), aggregated, "the buckets stay")

        archive = self.Archive.search([("day", "=", "2022-04-14")])
        self.assertEqual((archive.company_id, archive.row_count), (self.env.company, 2))
        self.assertEqual(archive.file_name, "iot_usage_2022-04-14_%d.csv.gz" % self.env.company.id)
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(archive.attachment_id.raw).decode())))
        self.assertEqual([(row["message_id"], row["device"], row["metric"], row["quantity"], row["timestamp"])
                          for row in rows],
                         [("a-1", "U-1", "kwh", "12.500000", "2022-04-14 09:00:00"),
                          ("a-2", "U-1", "kwh", "0.000001", "2022-04-14 23:00:00")])
        self.assertEqual(rows[0]["payload"], '{"volt": 231}')
        self.assertFalse(self.Archive.search([("day", "=", "2022-06-20")]))

        # A redelivery of a dropped day can no longer be told from a new reading: refused, kept.
        late = self.api.api_ingest([self._reading(quantity="12.5", timestamp="2022-04-14T09:00:00Z",
                                                  message_id="a-1")])
        self.assertEqual(late["accepted"], 0)
        kept_from = self.Usage._raw_kept_from()
        # Past the window on 20 July: 21 April; every partition before it was dropped.
        self.assertTrue(datetime.date(2022, 4, 15) <= kept_from <= datetime.date(2022, 4, 21), kept_from)
        self.assertIn("before %s, the oldest day of raw readings kept" % kept_from, late["rejected"][0]["reason"])
        self.assertEqual(self.Reject.search([("message_id", "=", "a-1")]).state, "open")
        self.assertEqual(self.april.usage_quantity, 12.500001, "not counted twice")
        aggregate = self.api.api_ingest_aggregates([{
            "identifier": "U-1", "metric": "kwh", "count": 2, "sum": "2", "min": "1", "max": "1", "first": "1",
            "last": "1", "timestamp_from": "2022-04-14T09:00:00Z", "timestamp_to": "2022-04-14T09:30:00Z",
            "message_id": "agg-1"}])
        self.assertIn("oldest day of raw readings kept", aggregate["rejected"][0]["reason"])
        self.assertEqual(buckets(), aggregated, "nothing added to the buckets")

    def test_a_day_exported_again_appends_to_its_export(self):
        self.api.api_ingest([self._reading(quantity="2", timestamp="2022-04-14T09:00:00Z", message_id="e-1")])
        self._rotate("2022-07-20")
        april_14 = datetime.date(2022, 4, 14)
        # A late reading whose batch began before the drop committed re-creates the day's partition.
        ensure_partitions(self.env.cr, [april_14])
        self.Usage.create({"device_id": self.device_1.id, "metric_id": self.metric_kwh.id, "quantity": 3,
                           "timestamp": "2022-04-14 10:00:00", "message_id": "e-2"})
        self._rotate("2022-07-20")
        self.assertFalse(self._exists(april_14))
        archive = self.Archive.search([("day", "=", "2022-04-14")])
        self.assertEqual(archive.row_count, 2, "one export of the day, with both readings")
        rows = list(csv.DictReader(io.StringIO(gzip.decompress(archive.attachment_id.raw).decode())))
        self.assertEqual([(row["message_id"], row["quantity"]) for row in rows],
                         [("e-1", "2.000000"), ("e-2", "3.000000")], "one header, then every row")

    def test_a_redelivery_is_a_duplicate_for_the_whole_window(self):
        entry = self._reading(quantity="2", timestamp="2022-04-14T09:00:00Z", message_id="w-1")
        self.assertEqual(self.api.api_ingest([entry])["accepted"], 1)
        self._rotate("2022-07-13")  # the 90th day after 14 April: still in the window
        self.assertTrue(self._exists(datetime.date(2022, 4, 14)))
        again = self.api.api_ingest([dict(entry)])
        self.assertEqual((again["accepted"], again["duplicates"]), (0, 1))
        self.assertEqual(self.Usage.search_count([("message_id", "=", "w-1")]), 1)

    def test_the_longest_company_window_applies_and_export_is_per_company(self):
        other = self.env["res.company"].create({"name": "Partition Co B", "iot_usage_raw_retention_days": 30})
        device_b = self.Device.create({"name": "B", "identifier": "B-1", "company_id": other.id})
        self.Usage.with_company(other).create({
            "device_id": device_b.id, "company_id": other.id, "metric_id": self.metric_kwh.id,
            "quantity": 1, "timestamp": "2022-04-14 10:00:00", "message_id": "b-1"})
        self.api.api_ingest([self._reading(timestamp="2022-04-14T11:00:00Z", message_id="a-1")])
        self.env.company.iot_usage_raw_retention_days = 60
        self._rotate("2022-06-01")  # 48 days later: past B's 30 days, not A's 60
        self.assertTrue(self._exists(datetime.date(2022, 4, 14)))
        self.env.company.iot_usage_raw_export = False
        self._rotate("2022-06-14")  # 61 days later
        self.assertFalse(self._exists(datetime.date(2022, 4, 14)))
        archives = self.Archive.search([("day", "=", "2022-04-14")])
        self.assertEqual(archives.company_id, other, "company A asked for no export")
        self.assertEqual(archives.row_count, 1)

    def test_readings_menu_opens_on_a_recent_window(self):
        action = self.env.ref("iot_usage.iot_usage_action")
        self.assertIn("'search_default_since_yesterday': 1", action.context)
        arch = etree.fromstring(self.Usage.get_views([(False, "search")])["views"]["search"]["arch"])
        self.api.api_ingest([self._reading(timestamp="2022-04-12T23:59:59Z", message_id="old"),
                             self._reading(timestamp="2022-04-13T00:00:00Z", message_id="week"),
                             self._reading(timestamp="2022-04-19T00:00:00Z", message_id="yesterday")])
        for name, expected in (("since_yesterday", ["yesterday"]), ("last_7_days", ["yesterday", "week"])):
            [window] = arch.xpath("//filter[@name='%s']" % name)
            # The domain as the web client evaluates it, on 20 April.
            domain = safe_eval(window.get("domain"), {
                "context_today": lambda: datetime.date(2022, 4, 20), "relativedelta": relativedelta})
            self.assertEqual(self.Usage.search(domain).mapped("message_id"), expected, name)

    def test_a_company_can_keep_no_raw_readings(self):
        self.env.company.iot_usage_raw_keep = False
        batch = [
            self._reading(quantity="2.5", timestamp="2022-04-14T09:00:00Z", message_id="k-1"),
            self._reading(quantity="1", timestamp="2022-04-14T09:10:00Z", message_id="k-2"),
            self._reading(quantity="2.5", timestamp="2022-04-14T09:00:00Z", message_id="k-1"),
        ]
        self.assertEqual(self.api.api_ingest(batch), {"accepted": 2, "duplicates": 1, "rejected": []})
        self.assertFalse(self.Usage.search_count([("device_id", "=", self.device_1.id)]), "no raw row")
        self.env.cr.execute("SELECT message_id FROM iot_usage_key WHERE device_id = %s ORDER BY 1",
                            [self.device_1.id])
        self.assertEqual(self.env.cr.fetchall(), [("k-1",), ("k-2",)], "only the keys")
        bucket = self.env["iot.usage.bucket"].search([("device_id", "=", self.device_1.id)])
        self.assertEqual((bucket.reading_count, bucket.quantity_sum, bucket.first_quantity), (2, 3.5, 2.5))
        # A redelivery within the window counts once; billing reads the buckets.
        again = self.api.api_ingest(batch[:2])
        self.assertEqual((again["accepted"], again["duplicates"]), (0, 2))
        self._run("2022-04-30")
        self.assertEqual(self.april.usage_quantity, 3.5)
        # The keys go with their day; there is nothing to export.
        self._rotate("2022-07-20")
        self.env.cr.execute("SELECT to_regclass(%s)", [partition_name(datetime.date(2022, 4, 14), "iot_usage_key")])
        self.assertIsNone(self.env.cr.fetchone()[0])
        self.assertFalse(self.Archive.search([("day", "=", "2022-04-14")]))
        self.assertEqual(self.april.usage_quantity, 3.5)

    def test_switching_raw_readings_off_and_on_keeps_duplicates_out(self):
        first = self._reading(quantity="2", timestamp="2022-04-14T09:00:00Z", message_id="s-1")
        self.assertEqual(self.api.api_ingest([first])["accepted"], 1)
        self.env.company.iot_usage_raw_keep = False
        second = self._reading(quantity="3", timestamp="2022-04-14T10:00:00Z", message_id="s-2")
        result = self.api.api_ingest([dict(first), second])
        self.assertEqual((result["accepted"], result["duplicates"]), (1, 1), "s-1 was stored raw")
        self.env.company.iot_usage_raw_keep = True
        result = self.api.api_ingest([dict(first), dict(second)])
        self.assertEqual((result["accepted"], result["duplicates"]), (0, 2), "s-2 was stored as a key")
        bucket_sum = sum(self.env["iot.usage.bucket"].search([("device_id", "=", self.device_1.id)])
                         .mapped("quantity_sum"))
        self.assertEqual(bucket_sum, 5.0, "each reading counted once")


@tagged("post_install", "-at_install")
class TestDropMeetsLateReading(TransactionCase):
    """The export-then-drop of a day and a late reading of that day, on two real transactions
    (committed data, removed again in the cleanup)."""

    def setUp(self):
        super().setUp()
        self.identifier = "LATE-DROP-%s" % uuid.uuid4().hex[:8]
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.kept_from = env["ir.config_parameter"].get_param("iot_usage.raw_kept_from")
            # An old day no other test uses, before any day already dropped.
            self.day = datetime.date(2000, 2, 1)
            while env["iot.usage"].search_count([("timestamp", ">=", self.day),
                                                 ("timestamp", "<", self.day + datetime.timedelta(days=1))]):
                self.day += datetime.timedelta(days=1)
            env["ir.config_parameter"].set_param("iot_usage.raw_kept_from", False)
            env["iot_billing.device"].api_register([{"identifier": self.identifier}])
            self.company_id = env["iot_billing.device"].search([("identifier", "=", self.identifier)]).company_id.id
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            archives = env["iot.usage.archive"].search([("day", "=", self.day)])
            attachments = archives.attachment_id
            archives.unlink()
            attachments.exists().unlink()  # unlinked with their record, as a rule
            drop_partition(cr, self.day)
            cr.execute("SELECT id FROM iot_billing_device WHERE identifier = %s", [self.identifier])
            device_ids = [row[0] for row in cr.fetchall()]
            for table in ("iot_usage_bucket", "iot_usage_reject", "iot_billing_device"):
                column = "id" if table == "iot_billing_device" else "device_id"
                cr.execute("DELETE FROM %s WHERE %s = ANY(%%s)" % (table, column), [device_ids])
            env["ir.config_parameter"].set_param("iot_usage.raw_kept_from", self.kept_from)

    def _ingest(self, env, message_id, hour):
        return env["iot.usage"].api_ingest([{
            "identifier": self.identifier, "metric": "kwh", "quantity": "1", "message_id": message_id,
            "timestamp": "%sT%02d:00:00Z" % (self.day.isoformat(), hour)}])

    def test_a_reading_committed_while_the_day_is_exported_is_exported_before_the_drop(self):
        with self.registry.cursor() as cr:
            result = self._ingest(api.Environment(cr, SUPERUSER_ID, {}), "early", 9)
            self.assertEqual(result["accepted"], 1, result)
        with self.registry.cursor() as late, self.registry.cursor() as rotation:
            # The late reading's transaction is under way (its insert holds the partition)...
            self.assertEqual(self._ingest(api.Environment(late, SUPERUSER_ID, {}), "late", 23)["accepted"], 1)
            rotation.execute("SELECT pg_backend_pid()")
            rotation_pid = rotation.fetchone()[0]
            rotation.rollback()  # the rotation's transaction begins with the export
            outcome = {}
            # Made here: under odoo-bin the tests run while the registry is loading, and
            # another thread asking for the registry would wait for the load to end.
            env = api.Environment(rotation, SUPERUSER_ID, {})

            def export_and_drop():
                try:
                    archives = env["iot.usage.archive"]._archive_and_drop(self.day)
                    outcome["rows"] = list(csv.DictReader(io.StringIO(
                        gzip.decompress(archives.attachment_id.raw).decode())))
                    rotation.commit()
                except Exception as error:  # noqa: BLE001 - reported by the assertion below
                    outcome["error"] = error
                    rotation.rollback()

            # ... when the rotation exports and drops the day: it waits for the insert...
            worker = threading.Thread(target=export_and_drop)
            worker.start()
            with closing(db_connect(self.env.cr.dbname).cursor()) as watch:
                for _poll in range(100):
                    watch.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [rotation_pid])
                    if watch.fetchone()[0] == "Lock":
                        break
                    watch.rollback()
                    time.sleep(0.05)
                else:
                    self.fail("the rotation did not wait for the inserting transaction")
            # ... which commits while the rotation waits.
            late.commit()
            worker.join(30)
        self.assertNotIn("error", outcome)
        self.assertEqual(sorted(row["message_id"] for row in outcome["rows"]), ["early", "late"],
                         "the late reading is exported, not dropped unexported")
        with self.registry.cursor() as cr:
            cr.execute("SELECT to_regclass(%s)", [partition_name(self.day)])
            self.assertIsNone(cr.fetchone()[0], "the day was dropped")
            archive = api.Environment(cr, SUPERUSER_ID, {})["iot.usage.archive"].search([("day", "=", self.day)])
            self.assertEqual(archive.row_count, 2)
