#!/usr/bin/env python3
"""Raw readings on disk, and the Readings menu at that size (issue 13).

    python3 bench/usage_storage.py [--devices 2000] [--days 7] [--db bench_iot_storage] [--reset]

The smart city scaled down: ``--devices`` streetlights, one reading a minute, for the last
``--days`` days (up to now), generated set-based in PostgreSQL, one daily partition at a
time, as ingestion stores them (same columns, indexes, foreign keys), and their hourly usage
buckets (what ingestion aggregates them into). Prints the bytes on disk per reading during
the retention window (raw partitions + buckets) and after it (buckets only), the
extrapolation to 200,000 streetlights, and what the web client runs for *Usage > Readings*
(default filter: today and yesterday; the last 7 days) against the same without a filter (what the menu opened
on before), through JSON-RPC on a real Odoo server: first page of the list, group by device.
"""

import datetime
import gzip
import importlib.util
import os
import tempfile
import time

from benchlib import ROOT, OdooServer, connect, ensure_database, machine, parser, print_table, sql

_spec = importlib.util.spec_from_file_location(
    "partitions", os.path.join(ROOT, "addons", "iot_usage", "tools", "partitions.py"))
partitions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(partitions)

MINUTES_PER_DAY = 1440
FULL_CITY = 200_000


def generate(db, devices, days):
    connection = connect(db)
    cursor = connection.cursor()
    cursor.execute("SELECT count(*) FROM iot_usage")
    if cursor.fetchone()[0] == devices * MINUTES_PER_DAY * days:
        print("readings already there; buckets rebuilt", flush=True)
        cursor.execute("TRUNCATE iot_usage_bucket")
        fill_buckets(cursor, "true", [])
        cursor.execute("VACUUM ANALYZE iot_usage_bucket")
        return 0.0
    cursor.execute("TRUNCATE iot_usage, iot_usage_bucket")
    cursor.execute("SELECT id FROM iot_usage_metric WHERE code = 'kwh'")
    metric_id = cursor.fetchone()[0]
    today = datetime.datetime.now(datetime.UTC).date()
    first = today - datetime.timedelta(days=days - 1)
    started = time.perf_counter()
    for offset in range(days):
        day = first + datetime.timedelta(days=offset)
        cursor.execute("BEGIN")
        partitions.ensure_partitions(cursor, [day])
        # A day of readings as api_ingest stores them: message ids as devices send them,
        # quantities with 6 decimals, received a few seconds after measured.
        cursor.execute(
            """
            INSERT INTO iot_usage (device_id, company_id, metric_id, quantity, timestamp, message_id,
                                   source, received_at)
            SELECT device.id, device.company_id, %s, round((random() * 0.2)::numeric, 6),
                   %s::timestamp + minute * interval '1 minute',
                   device.identifier || '-' || to_char(%s::date, 'YYYYMMDD') || '-' || minute,
                   'mqtt', %s::timestamp + minute * interval '1 minute' + interval '3 seconds'
              FROM generate_series(0, %s) AS minute
              CROSS JOIN (SELECT id, company_id, identifier FROM iot_billing_device
                           WHERE identifier LIKE 'SL-%%' ORDER BY id LIMIT %s) AS device
             ORDER BY minute, device.id
            """,
            [metric_id, day, day, day, MINUTES_PER_DAY - 1, devices],
        )
        inserted = cursor.rowcount
        # The day's hourly buckets, as ingestion fills them (iot.usage.bucket).
        fill_buckets(cursor, "timestamp >= %s AND timestamp < %s::date + 1", [day, day])
        cursor.execute("COMMIT")
        print("  %s: %d readings, %.0f s so far" % (day, inserted, time.perf_counter() - started), flush=True)
    cursor.execute("VACUUM ANALYZE iot_usage")
    cursor.execute("VACUUM ANALYZE iot_usage_bucket")
    connection.close()
    return time.perf_counter() - started


def fill_buckets(cursor, where, params):
    """Hourly buckets of the readings ``where`` selects, as ingestion fills them (one writer)."""
    cursor.execute(
        """
        INSERT INTO iot_usage_bucket (company_id, device_id, metric_id, bucket_start, bucket_stop,
                                      reading_count, quantity_sum, quantity_min, quantity_max,
                                      first_at, first_quantity, first_seq, last_at, last_quantity, last_seq,
                                      writer, state, is_late)
        SELECT company_id, device_id, metric_id, date_trunc('hour', timestamp),
               date_trunc('hour', timestamp) + interval '1 hour', count(*), sum(quantity),
               min(quantity), max(quantity), min(timestamp),
               (array_agg(quantity ORDER BY timestamp, id))[1], (array_agg(id ORDER BY timestamp, id))[1],
               max(timestamp), (array_agg(quantity ORDER BY timestamp DESC, id DESC))[1],
               (array_agg(id ORDER BY timestamp DESC, id DESC))[1], pg_backend_pid(), 'to_value', false
          FROM iot_usage
         WHERE """ + where + """
         GROUP BY company_id, device_id, metric_id, date_trunc('hour', timestamp)
        """,
        params,
    )


def sizes(db):
    """(rows, heap bytes, index bytes, toast bytes) over every partition."""
    return sql(db, """
        SELECT sum(c.reltuples)::bigint,
               sum(pg_relation_size(c.oid)),
               sum(pg_indexes_size(c.oid)),
               sum(pg_total_relation_size(c.oid) - pg_relation_size(c.oid) - pg_indexes_size(c.oid))
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'iot_usage'::regclass""")[0]


def bucket_size(db):
    return sql(db, "SELECT count(*), pg_total_relation_size('iot_usage_bucket') FROM iot_usage_bucket")[0]


def index_sizes(db):
    return sql(db, """
        SELECT regexp_replace(ic.relname, '^iot_usage_p[0-9]+_', ''), sum(pg_relation_size(ic.oid))
          FROM pg_inherits i
          JOIN pg_index x ON x.indrelid = i.inhrelid
          JOIN pg_class ic ON ic.oid = x.indexrelid
         WHERE i.inhparent = 'iot_usage'::regclass
         GROUP BY 1 ORDER BY 2 DESC""")


def export_day(db, day):
    """What the rotation does before dropping a day (iot.usage.archive._export): COPY the
    day's readings to CSV through gzip. Returns (readings, seconds, compressed bytes)."""
    connection = connect(db)
    cursor = connection.cursor()
    cursor.execute("SELECT count(*) FROM %s" % partitions.partition_name(day))
    count = cursor.fetchone()[0]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as spool:
        with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0) as compressed:
            cursor.copy_expert(
                """COPY (SELECT usage.id, usage.timestamp, device.identifier AS device, metric.code AS metric,
                                usage.quantity, usage.message_id, usage.source, usage.received_at, usage.payload
                           FROM %s usage
                           LEFT JOIN iot_billing_device device ON device.id = usage.device_id
                           LEFT JOIN iot_usage_metric metric ON metric.id = usage.metric_id
                          ORDER BY usage.timestamp, usage.id) TO STDOUT WITH (FORMAT csv, HEADER)"""
                % partitions.partition_name(day), compressed)
        size = spool.tell()
    connection.close()
    return count, time.perf_counter() - started, size


def timed(call, *args, rounds=3, **kwargs):
    best = None
    for _round in range(rounds):
        started = time.perf_counter()
        result = call(*args, **kwargs)
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def main():
    args = parser(__doc__)
    args.add_argument("--devices", type=int, default=2000)
    args.add_argument("--days", type=int, default=7)
    args.set_defaults(db="bench_iot_storage")
    args = args.parse_args()
    print("machine: %s" % machine(), flush=True)
    ensure_database(args.db, args.reset)
    with OdooServer(args.db) as server:
        admin = server.client()
        have = sql(args.db, "SELECT count(*) FROM iot_billing_device WHERE identifier LIKE 'SL-%%'")[0][0]
        if have < args.devices:
            admin("iot_billing.device", "api_register",
                  [{"identifier": "SL-%06d" % n} for n in range(have + 1, args.devices + 1)])
        generation = generate(args.db, args.devices, args.days)
        rows, heap, indexes, toast = sizes(args.db)
        total = heap + indexes + toast
        per_reading = total / rows
        print_table(
            "Raw readings on disk: %d streetlights x 1/min x %d days = %d readings (generated in %.0f s)"
            % (args.devices, args.days, rows, generation),
            ["part", "MB", "bytes/reading"],
            [["heap", "%.0f" % (heap / 1e6), "%.1f" % (heap / rows)],
             ["indexes", "%.0f" % (indexes / 1e6), "%.1f" % (indexes / rows)],
             ["toast", "%.0f" % (toast / 1e6), "%.1f" % (toast / rows)],
             ["total", "%.0f" % (total / 1e6), "%.1f" % per_reading]]
            + [["  index " + name, "%.0f" % (size / 1e6), "%.1f" % (size / rows)]
               for name, size in index_sizes(args.db)],
        )
        buckets, bucket_bytes = bucket_size(args.db)
        per_reading_after = bucket_bytes / rows
        print_table(
            "Bytes on disk per reading",
            ["when", "raw partitions", "buckets (%d, hourly)" % buckets, "total"],
            [["during the retention window", "%.1f" % per_reading, "%.2f" % per_reading_after,
              "%.1f" % (per_reading + per_reading_after)],
             ["after it (partition dropped)", "0", "%.2f" % per_reading_after, "%.2f" % per_reading_after]],
        )
        month = FULL_CITY * MINUTES_PER_DAY * 30
        print_table(
            "Extrapolated to %d streetlights (%.2f G readings a month)" % (FULL_CITY, month / 1e9),
            ["what", "GB"],
            [["a month of raw readings", "%.0f" % (month * per_reading / 1e9)],
             ["the 90-day window of raw readings", "%.0f" % (3 * month * per_reading / 1e9)],
             ["a month of buckets (kept)", "%.1f" % (month * per_reading_after / 1e9)]],
        )

        day = datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)
        count, seconds, size = export_day(args.db, day)
        print_table(
            "Export of one day before its drop (CSV, gzip)", ["readings", "s", "MB gzip", "bytes/reading"],
            [[count, "%.1f" % seconds, "%.1f" % (size / 1e6), "%.1f" % (size / count)]],
        )

        week_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=7)).strftime("%Y-%m-%d")
        recent = [("timestamp", ">=", week_ago)]
        fields = {"timestamp": {}, "device_id": {"fields": {"display_name": {}}},
                  "metric_id": {"fields": {"display_name": {}}}, "quantity": {}, "source": {}}
        cases = []
        yesterday = (datetime.datetime.now(datetime.UTC).date() - datetime.timedelta(days=1)).isoformat()
        for label, domain in (("all readings (before)", []), ("last 7 days", recent),
                              ("today and yesterday (the menu's default)", [("timestamp", ">=", yesterday)])):
            page, _ = timed(admin, "iot.usage", "web_search_read", domain, fields, limit=80, count_limit=10001)
            grouped, groups = timed(admin, "iot.usage", "web_read_group", domain, ["quantity:sum"], ["device_id"],
                                    limit=80, rounds=2)
            cases.append((label, page, grouped, groups["length"]))
        print_table(
            "Usage > Readings through JSON-RPC (best of 3; group by: best of 2)",
            ["domain", "list first page s", "group by device s", "groups", "ratio list", "ratio group"],
            [[label, "%.3f" % page, "%.3f" % grouped, str(length),
              "%.2f" % (page / cases[0][1]), "%.2f" % (grouped / cases[0][2])]
             for label, page, grouped, length in cases],
        )


if __name__ == "__main__":
    main()
