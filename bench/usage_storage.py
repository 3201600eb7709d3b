#!/usr/bin/env python3
"""Raw readings on disk, and the Readings menu at that size (issue 13).

    python3 bench/usage_storage.py [--devices 2000] [--days 7] [--db bench_iot_storage] [--reset]

The smart city at 1/100 scale: ``--devices`` streetlights, one reading a minute, for the
last ``--days`` days (up to now), generated set-based in PostgreSQL, one daily partition at
a time, as ingestion stores them (same columns, indexes, foreign keys). Prints the bytes
on disk per reading (heap, indexes, TOAST), the extrapolation to 200,000 streetlights,
and what the web client runs for *Usage > Readings* (default filter: the last 7 days)
against the same without the filter (what the menu opened on before), through JSON-RPC
on a real Odoo server: first page of the list, count, group by device.
"""

import datetime
import importlib.util
import os
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
        print("readings already there", flush=True)
        return 0.0
    cursor.execute("TRUNCATE iot_usage")
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
                                   source, state, is_late, received_at)
            SELECT device.id, device.company_id, %s, round((random() * 0.2)::numeric, 6),
                   %s::timestamp + minute * interval '1 minute',
                   device.identifier || '-' || to_char(%s::date, 'YYYYMMDD') || '-' || minute,
                   'mqtt', 'to_value', false, %s::timestamp + minute * interval '1 minute' + interval '3 seconds'
              FROM generate_series(0, %s) AS minute
              CROSS JOIN (SELECT id, company_id, identifier FROM iot_billing_device
                           WHERE identifier LIKE 'SL-%%' ORDER BY id LIMIT %s) AS device
             ORDER BY minute, device.id
            """,
            [metric_id, day, day, day, MINUTES_PER_DAY - 1, devices],
        )
        inserted = cursor.rowcount
        cursor.execute("COMMIT")
        print("  %s: %d readings, %.0f s so far" % (day, inserted, time.perf_counter() - started), flush=True)
    cursor.execute("VACUUM ANALYZE iot_usage")
    connection.close()
    return time.perf_counter() - started


def sizes(db):
    """(rows, heap bytes, index bytes, toast bytes) over every partition."""
    return sql(db, """
        SELECT sum(c.reltuples)::bigint,
               sum(pg_relation_size(c.oid)),
               sum(pg_indexes_size(c.oid)),
               sum(pg_total_relation_size(c.oid) - pg_relation_size(c.oid) - pg_indexes_size(c.oid))
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'iot_usage'::regclass""")[0]


def index_sizes(db):
    return sql(db, """
        SELECT regexp_replace(ic.relname, '^iot_usage_p[0-9]+_', ''), sum(pg_relation_size(ic.oid))
          FROM pg_inherits i
          JOIN pg_index x ON x.indrelid = i.inhrelid
          JOIN pg_class ic ON ic.oid = x.indexrelid
         WHERE i.inhparent = 'iot_usage'::regclass
         GROUP BY 1 ORDER BY 2 DESC""")


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
        month = FULL_CITY * MINUTES_PER_DAY * 30
        print_table(
            "Extrapolated to %d streetlights (%.2f G readings a month)" % (FULL_CITY, month / 1e9),
            ["what", "TB"],
            [["a month of raw readings", "%.2f" % (month * per_reading / 1e12)],
             ["the 90-day window of raw readings", "%.2f" % (3 * month * per_reading / 1e12)]],
        )

        week_ago = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=7)).strftime("%Y-%m-%d")
        recent = [("timestamp", ">=", week_ago)]
        fields = {"timestamp": {}, "device_id": {"fields": {"display_name": {}}},
                  "metric_id": {"fields": {"display_name": {}}}, "quantity": {}, "source": {},
                  "schedule_id": {"fields": {"display_name": {}}}, "state": {}}
        cases = []
        for label, domain in (("all readings (before)", []), ("last 7 days (the menu's default)", recent)):
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
