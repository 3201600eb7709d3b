#!/usr/bin/env python3
"""What each foreign key and index of ``iot_usage`` costs the deduplicating insert.

    python3 bench/usage_table_variants.py [--rows 200000] [--batch 10000] [--rounds 2]

PostgreSQL alone (no Odoo): copies of ``iot_usage`` with all, some or none of its
foreign keys and indexes receive the same rows, ``INSERT ... SELECT FROM unnest(...)
ON CONFLICT DO NOTHING`` as ``api_ingest`` does, and the rates are printed with the
ratio to the table as it was before (Odoo's default create/write user and date, an
index on state). Needs the benchmark database with devices (``bench/ingest_rpc.py``
registers 10,000).
"""

import time

from benchlib import connect, machine, parser, print_table

# (label, with Odoo's create/write user and date, with a full index on state,
# foreign keys dropped, indexes dropped); keys and indexes are matched on parts of their names.
VARIANTS = [
    ("before: create/write user and date, index on state", True, True, (), ()),
    ("without create/write user and date", False, True, (), ()),
    ("as the module makes it (no index on state either)", False, False, (), ()),
    ("... and without the company index", False, False, (), ("company_id_index",)),
    ("... and without the company FK", False, False, ("company_id",), ("company_id_index",)),
    ("without any FK", False, False, ("_fkey",), ()),
]
LOG_COLUMNS = ("create_uid", "write_uid", "create_date", "write_date")


def build(cursor, name, log_access, state_index, foreign_keys, indexes, drop_keys, drop_indexes):
    cursor.execute("DROP TABLE IF EXISTS %s" % name)
    cursor.execute("CREATE TABLE %s (LIKE iot_usage INCLUDING DEFAULTS INCLUDING CONSTRAINTS)" % name)
    if state_index:
        cursor.execute("CREATE INDEX ON %s (state)" % name)
    if log_access:
        cursor.execute("ALTER TABLE %s ADD create_uid int REFERENCES res_users ON DELETE SET NULL, "
                       "ADD write_uid int REFERENCES res_users ON DELETE SET NULL, "
                       "ADD create_date timestamp, ADD write_date timestamp" % name)
    for number, (index_name, definition) in enumerate(sorted(indexes.items())):
        # an index on state alone is the variants' own choice (databases installed before it went)
        if not any(part in index_name for part in drop_indexes + ("__state_index",)):
            cursor.execute(definition.replace(" ON public.iot_usage ", " ON public.%s " % name)
                           .replace(index_name, "%s_idx%d" % (name, number), 1))
    for key_name, definition in foreign_keys.items():
        if not any(part in key_name for part in drop_keys):
            cursor.execute("ALTER TABLE %s ADD %s" % (name, definition))


def insert_rate(cursor, name, log_access, devices, metric_id, rows, batch, tag):
    log_columns = (", " + ", ".join(LOG_COLUMNS)) if log_access else ""
    log_values = ", 2, 2, now(), now()" if log_access else ""
    start = time.monotonic()
    for offset in range(0, rows, batch):
        numbers = range(offset, min(offset + batch, rows))
        cursor.execute("BEGIN")
        cursor.execute(
            """INSERT INTO %s (device_id, company_id, metric_id, quantity, timestamp, message_id,
                               source, received_at%s)
               SELECT device_id, company_id, %%s, quantity, ts, message_id, 'api', now()%s
                 FROM unnest(%%s::int[], %%s::int[], %%s::numeric[], %%s::timestamp[], %%s::varchar[])
                      AS row(device_id, company_id, quantity, ts, message_id)
               ON CONFLICT DO NOTHING""" % (name, log_columns, log_values),
            (metric_id, [devices[n % len(devices)][0] for n in numbers],
             [devices[n % len(devices)][1] for n in numbers], ["%d.%03d" % (n % 50, n % 1000) for n in numbers],
             ["2022-04-%02d %02d:%02d:00" % (1 + n % 28, n % 24, n % 60) for n in numbers],
             ["%s-%d" % (tag, n) for n in numbers]))
        cursor.execute("COMMIT")
    return rows / (time.monotonic() - start)


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--rows", type=int, default=200000)
    args.add_argument("--batch", type=int, default=10000)
    args.add_argument("--rounds", type=int, default=2)
    args = args.parse_args()
    print("machine: %s" % machine())
    connection = connect(args.db)
    cursor = connection.cursor()
    cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE conrelid = 'iot_usage'::regclass AND contype = 'f'")
    foreign_keys = dict(cursor.fetchall())
    cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'iot_usage'")
    indexes = dict(cursor.fetchall())
    cursor.execute("SELECT id, company_id FROM iot_billing_device ORDER BY id LIMIT 10000")
    devices = cursor.fetchall()
    cursor.execute("SELECT id FROM iot_usage_metric WHERE code = 'kwh'")
    metric_id = cursor.fetchone()[0]
    if not devices:
        raise SystemExit("no device in %s: run bench/ingest_rpc.py first" % args.db)
    rates = {variant[0]: [] for variant in VARIANTS}
    for round_number in range(args.rounds):
        for label, log_access, state_index, drop_keys, drop_indexes in VARIANTS:
            build(cursor, "bench_usage_variant", log_access, state_index, foreign_keys, indexes, drop_keys,
                  drop_indexes)
            rates[label].append(insert_rate(cursor, "bench_usage_variant", log_access, devices, metric_id,
                                            args.rows, args.batch, "r%d" % round_number))
            cursor.execute("DROP TABLE bench_usage_variant")
    reference = sum(rates[VARIANTS[0][0]]) / args.rounds
    print_table(
        "Deduplicating insert of %d rows, %d per statement, by PostgreSQL alone (rows/s)" % (args.rows, args.batch),
        ["table variant"] + ["round %d" % (n + 1) for n in range(args.rounds)] + ["vs before"],
        [[label] + ["%.0f" % rate for rate in rates[label]]
         + ["%.2f x" % (sum(rates[label]) / args.rounds / reference)] for label in rates],
    )
    connection.close()


if __name__ == "__main__":
    main()
