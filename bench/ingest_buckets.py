#!/usr/bin/env python3
"""Ingestion with usage buckets against the code before them: RPC readings/s, alternating.

    python3 bench/ingest_buckets.py --before <git ref> [--total 200000] [--rounds 3]

The code of ``--before`` (a commit without usage buckets) is checked out beside this one and
installed in its own database; both serve the same readings over JSON-RPC (2 clients, 1,000
readings per call, Odoo's default limits, 2 workers), one after the other, ``--rounds`` times
in alternating order so that the machine's drift falls on both. Prints each rate, the ratio
after / before, and the bytes on disk per reading of the raw table and of the buckets.
"""

import os
import statistics
import subprocess

from benchlib import ROOT, OdooServer, install, machine, parser, print_table, send_batches, sql

IDENTIFIER = "BK-%05d"



def readings(round_id, total, devices, batch_size):
    """One reading a minute per device, devices in turn: each batch fills many hourly buckets."""
    batch = []
    for n in range(total):
        minute = n // devices
        batch.append({
            "identifier": IDENTIFIER % (n % devices), "metric": "kwh",
            "quantity": "%d.%03d" % (n % 50, n % 1000),
            "timestamp": "2022-04-%02dT%02d:%02d:00Z" % (1 + minute // 1440 % 28, minute // 60 % 24, minute % 60),
            "message_id": "%s-%d" % (round_id, n),
        })
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest(server, round_id, total, devices, batch_size, clients):
    answers, elapsed = send_batches(server, list(readings(round_id, total, devices, batch_size)), clients)
    accepted = sum(answer["accepted"] for answer in answers)
    assert accepted == total, (accepted, total)
    return total / elapsed


def table_bytes(db, table):
    """Bytes of a table with its indexes; of all its partitions for a partitioned one."""
    rows = sql(db, "SELECT to_regclass(%s) IS NOT NULL", (table,))
    if not rows[0][0]:
        return 0
    return sql(db, """SELECT CASE WHEN c.relkind = 'p'
                                  THEN (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree(c.oid))
                                  ELSE pg_total_relation_size(c.oid) END
                        FROM pg_class c WHERE c.oid = %s::regclass""", (table,))[0][0]


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--before", required=True, help="git ref of the code without usage buckets")
    args.add_argument("--total", type=int, default=200000, help="readings per measure")
    args.add_argument("--devices", type=int, default=2000)
    args.add_argument("--rounds", type=int, default=3)
    args.add_argument("--clients", type=int, default=2)
    args.add_argument("--batch-size", type=int, default=1000)
    args = args.parse_args()
    before_tree = "/tmp/bench-before-%s" % args.before
    if not os.path.isdir(before_tree):
        subprocess.run(["git", "worktree", "add", "--detach", before_tree, args.before], cwd=ROOT, check=True)
    trees = {"before": before_tree, "after": ROOT}
    dbs = {"before": "bench_buckets_before", "after": "bench_buckets_after"}
    print("machine: %s" % machine())
    for name in trees:
        print("installing %s (%s) ..." % (dbs[name], trees[name]), flush=True)
        install(trees[name], dbs[name])
    rates = {"before": [], "after": []}
    sizes = {}
    for round_number in range(args.rounds):
        order = ("before", "after") if round_number % 2 == 0 else ("after", "before")
        for name in order:
            db = dbs[name]
            with OdooServer(db, workers=2, root=trees[name],
                            log_path="/tmp/bench-buckets-%s.log" % name) as server:
                if round_number == 0:
                    server.client()("iot_billing.device", "api_register",
                                    [{"identifier": IDENTIFIER % n} for n in range(args.devices)])
                rate = ingest(server, "r%d" % round_number, args.total, args.devices, args.batch_size,
                              args.clients)
            rates[name].append(rate)
            print("  round %d %s: %.0f readings/s" % (round_number + 1, name, rate), flush=True)
            stored = sql(db, "SELECT count(*) FROM iot_usage")[0][0]
            # Closed buckets settle at their live size once vacuumed (adding rewrites a row).
            for table in ("iot_usage", "iot_usage_bucket"):
                if sql(db, "SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]:
                    sql(db, "VACUUM FULL %s" % table)
            sizes[name] = (stored, table_bytes(db, "iot_usage"), table_bytes(db, "iot_usage_bucket"),
                           sql(db, "SELECT count(*) FROM iot_usage_bucket")[0][0]
                           if table_bytes(db, "iot_usage_bucket") else 0)
    rows = [[name, " / ".join("%.0f" % rate for rate in rates[name]), "%.0f" % statistics.median(rates[name])]
            for name in ("before", "after")]
    print_table("RPC ingestion, %d readings per measure, %d devices, batches of %d, %d clients, default limits"
                % (args.total, args.devices, args.batch_size, args.clients),
                ["code", "readings/s per round", "median"], rows)
    print("after / before (medians): %.0f %%" % (100 * statistics.median(rates["after"])
                                                 / statistics.median(rates["before"])))
    size_rows = []
    for name, (stored, raw_bytes, bucket_bytes, buckets) in sizes.items():
        size_rows.append([name, stored, buckets, "%.0f" % (raw_bytes / stored), "%.1f" % (bucket_bytes / stored)])
    print_table("Bytes on disk per reading (tables with their indexes, after VACUUM FULL)",
                ["code", "raw readings", "buckets", "raw B/reading", "buckets B/reading"], size_rows)


if __name__ == "__main__":
    main()
