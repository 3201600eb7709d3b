#!/usr/bin/env python3
"""RPC ingestion: iot.usage.api_ingest over JSON-RPC against PostgreSQL's own rate.

    python3 bench/ingest_rpc.py [--total 1000000] [--clients 2] [--workers 2]

For each batch size (1k, 10k) and duplicate share (0 %, 10 %), sends ``--total``
readings through a real Odoo server and measures readings/s, then checks with
SQL that every distinct reading is stored once. Baselines, in the same run and
on the same rows: PostgreSQL alone doing the deduplicating insert (COPY into a
stage table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING) into the same
table with the same indexes and foreign keys, and into a copy of the table
without foreign keys (the raw ceiling).
"""

import io
import time

from benchlib import OdooServer, connect, ensure_database, machine, parser, print_table, send_batches, sql

IDENTIFIER = "BI-%06d"


def batches(config_id, total, batch_size, duplicates, devices):
    """Yield lists of readings; a share of each batch re-sends readings of the previous one."""
    sent = 0
    previous = []
    while sent < total:
        size = min(batch_size, total - sent)
        repeat = int(size * duplicates) if previous else 0
        batch = previous[:repeat]
        for n in range(sent, sent + size - repeat):
            batch.append({
                "identifier": IDENTIFIER % (n % devices),
                "metric": "kwh",
                "quantity": "%d.%03d" % (n % 50, n % 1000),
                "timestamp": "2022-04-%02dT%02d:%02d:00Z" % (1 + n % 28, n % 24, n % 60),
                "message_id": "%s-%d" % (config_id, n),
            })
        sent += size - repeat
        previous = batch[repeat:]
        yield batch


def run_rpc(server, config_id, total, batch_size, duplicates, devices, clients):
    all_batches = list(batches(config_id, total, batch_size, duplicates, devices))
    results, elapsed = send_batches(server, all_batches, clients)
    sent = sum(len(batch) for batch in all_batches)
    accepted = sum(result["accepted"] for result in results)
    dup = sum(result["duplicates"] for result in results)
    rejected = sum(len(result["rejected"]) for result in results)
    return sent, accepted, dup, rejected, elapsed


def run_postgres(db, table, config_id, total, batch_size, duplicates, devices):
    """The same batches, inserted by PostgreSQL alone: COPY to a stage table, deduplicating INSERT."""
    connection = connect(db)
    cursor = connection.cursor()
    cursor.execute("SELECT identifier, id, company_id FROM iot_billing_device WHERE identifier LIKE 'BI-%%'")
    device_ids = {identifier: (device_id, company_id) for identifier, device_id, company_id in cursor.fetchall()}
    cursor.execute("SELECT id FROM iot_usage_metric WHERE code = 'kwh'")
    metric_id = cursor.fetchone()[0]
    all_batches = list(batches(config_id, total, batch_size, duplicates, devices))
    cursor.execute("CREATE TEMP TABLE stage (device_id int, company_id int, quantity numeric, "
                   "ts timestamp, message_id varchar)")
    start = time.monotonic()
    for batch in all_batches:
        buffer = io.StringIO()
        for reading in batch:
            device_id, company_id = device_ids[reading["identifier"]]
            buffer.write("%d\t%d\t%s\t%s\t%s\n" % (device_id, company_id, reading["quantity"],
                                                   reading["timestamp"][:-1], reading["message_id"]))
        buffer.seek(0)
        cursor.execute("BEGIN")
        cursor.copy_from(buffer, "stage", columns=("device_id", "company_id", "quantity", "ts", "message_id"))
        cursor.execute(
            """INSERT INTO %s (device_id, company_id, metric_id, quantity, timestamp, message_id, source,
                               received_at)
               SELECT device_id, company_id, %%s, quantity, ts, message_id, 'api', now() FROM stage
               ON CONFLICT DO NOTHING""" % table,
            (metric_id,),
        )
        cursor.execute("TRUNCATE stage")
        cursor.execute("COMMIT")
    elapsed = time.monotonic() - start
    connection.close()
    return elapsed


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--total", type=int, default=1000000, help="readings per configuration")
    args.add_argument("--devices", type=int, default=10000)
    args.add_argument("--clients", type=int, default=2, help="concurrent RPC clients")
    args.add_argument("--workers", type=int, default=2, help="Odoo worker processes (0: threaded)")
    args.add_argument("--batch-sizes", default="1000,10000")
    args.add_argument("--duplicates", default="0,0.1")
    args = args.parse_args()
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    rows = []
    with OdooServer(args.db, workers=args.workers) as server:
        admin = server.client()
        for start in range(0, args.devices, 10000):
            admin("iot_billing.device", "api_register",
                  [{"identifier": IDENTIFIER % n} for n in range(start, min(args.devices, start + 10000))])
        sql(args.db, "DROP TABLE IF EXISTS iot_usage_no_fk")
        sql(args.db, "CREATE TABLE iot_usage_no_fk (LIKE iot_usage INCLUDING DEFAULTS INCLUDING INDEXES)")
        for batch_size in [int(size) for size in args.batch_sizes.split(",")]:
            for duplicates in [float(share) for share in args.duplicates.split(",")]:
                config = "b%d-d%d" % (batch_size, duplicates * 100)
                sql(args.db, "TRUNCATE iot_usage, iot_usage_no_fk")
                sent, accepted, dup, rejected, rpc_time = run_rpc(
                    server, config, args.total, batch_size, duplicates, args.devices, args.clients)
                stored = sql(args.db, "SELECT count(*), count(DISTINCT (device_id, message_id)) FROM iot_usage")[0]
                assert stored[0] == stored[1] == accepted == args.total and rejected == 0, (stored, accepted)
                assert dup == sent - accepted
                sql(args.db, "TRUNCATE iot_usage")
                pg_time = run_postgres(args.db, "iot_usage", config + "pg", args.total, batch_size, duplicates,
                                       args.devices)
                raw_time = run_postgres(args.db, "iot_usage_no_fk", config + "raw", args.total, batch_size,
                                        duplicates, args.devices)
                rpc_rate, pg_rate, raw_rate = sent / rpc_time, sent / pg_time, sent / raw_time
                rows.append([batch_size, "%d %%" % (duplicates * 100), sent, "%.1f" % rpc_time, "%.0f" % rpc_rate,
                             "%.0f" % pg_rate, "%.0f" % raw_rate, "%.0f %%" % (100 * rpc_rate / pg_rate),
                             "%.0f %%" % (100 * rpc_rate / raw_rate)])
                print("  %s: %d sent, %d stored once, %d duplicates, %.0f readings/s" % (
                    config, sent, accepted, dup, rpc_rate), flush=True)
        sql(args.db, "DROP TABLE iot_usage_no_fk")
        sql(args.db, "TRUNCATE iot_usage")
    print_table(
        "RPC ingestion (%d clients, %d Odoo workers) vs PostgreSQL's deduplicating insert of the same rows"
        % (args.clients, args.workers),
        ["batch", "dups", "readings", "rpc s", "rpc /s", "pg same table /s", "pg no FK /s",
         "rpc/pg", "rpc/pg no FK"],
        rows,
    )


if __name__ == "__main__":
    main()
