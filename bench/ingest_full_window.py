#!/usr/bin/env python3
"""Ingestion rate on an empty database against one holding a full retention window.

    python3 bench/ingest_full_window.py [--devices 100] [--days 90] [--total 100000] [--rounds 2]

Two databases with the same ``--devices`` streetlights: one empty, one holding ``--days`` days
of one reading a minute per device (raw partitions and their hourly buckets, generated
set-based as bench/usage_storage.py does). Both then take the same new readings of today over
JSON-RPC (batches of 1,000, 2 clients, 2 workers, Odoo's default limits), ``--rounds`` times
in alternating order. Prints readings/s per round, the medians and full / empty: index growth
would show as a lower rate on the full database.
"""

import statistics
from datetime import UTC, datetime

from benchlib import OdooServer, ensure_database, machine, parser, print_table, send_batches, sql
from usage_storage import generate


def readings(round_id, total, devices):
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    batch = []
    for n in range(total):
        minute = (n // devices) % 1440
        batch.append({
            "identifier": "SL-%06d" % (n % devices + 1), "metric": "kwh", "quantity": "0.%03d" % (n % 1000),
            "timestamp": "%sT%02d:%02d:30Z" % (today, minute // 60, minute % 60),
            "message_id": "new-%s-%d" % (round_id, n),
        })
        if len(batch) == 1000:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest(server, round_id, total, devices, clients=2):
    answers, elapsed = send_batches(server, list(readings(round_id, total, devices)), clients)
    accepted = sum(answer["accepted"] for answer in answers)
    assert accepted == total, (accepted, total)
    return total / elapsed


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--devices", type=int, default=100)
    args.add_argument("--days", type=int, default=90)
    args.add_argument("--total", type=int, default=100000)
    args.add_argument("--rounds", type=int, default=2)
    args = args.parse_args()
    print("machine: %s" % machine(), flush=True)
    dbs = {"empty": "bench_window_empty", "full": "bench_window_full"}
    for db in dbs.values():
        ensure_database(db, reset=True)
        with OdooServer(db) as server:
            server.client()("iot_billing.device", "api_register",
                            [{"identifier": "SL-%06d" % n} for n in range(1, args.devices + 1)])
    print("generating %d days of %d streetlights ..." % (args.days, args.devices), flush=True)
    seconds = generate(dbs["full"], args.devices, args.days)
    held = sql(dbs["full"], "SELECT (SELECT count(*) FROM iot_usage), (SELECT count(*) FROM iot_usage_bucket)")[0]
    print("full window: %d raw readings, %d buckets, generated in %.0f s" % (held[0], held[1], seconds), flush=True)
    rates = {"empty": [], "full": []}
    for round_number in range(args.rounds):
        order = ("empty", "full") if round_number % 2 == 0 else ("full", "empty")
        for name in order:
            with OdooServer(dbs[name], workers=2,
                            log_path="/tmp/bench-window-%s.log" % name) as server:
                rate = ingest(server, "r%d" % round_number, args.total, args.devices)
            rates[name].append(rate)
            print("  round %d %s: %.0f readings/s" % (round_number + 1, name, rate), flush=True)
    print_table(
        "RPC ingestion of today's readings, %d per measure, batches of 1,000, 2 clients, default limits"
        % args.total,
        ["database", "readings/s per round", "median"],
        [[name, " / ".join("%.0f" % rate for rate in rates[name]), "%.0f" % statistics.median(rates[name])]
         for name in dbs],
    )
    print("full / empty (medians): %.0f %%" % (100 * statistics.median(rates["full"])
                                               / statistics.median(rates["empty"])))


if __name__ == "__main__":
    main()
