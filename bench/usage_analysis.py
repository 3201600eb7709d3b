#!/usr/bin/env python3
"""Usage Analysis (buckets) against the same questions asked of raw readings, over JSON-RPC.

    python3 bench/usage_analysis.py [--db bench_window_full] [--days 30]

Runs on a database filled by bench/ingest_full_window.py (or bench/usage_storage.py): what the
web client asks for *Usage > Usage Analysis* over the last ``--days`` days (its default filter)
— the pivot by day × metric, the group by device, the list's first page — and the same
groupings of the raw readings of that window (*Usage > Readings*), the baseline. Best of 3.
"""

import time
from datetime import UTC, datetime, timedelta

from benchlib import OdooServer, machine, parser, print_table, sql


def best_of(call, times=3):
    best = None
    for _ in range(times):
        started = time.monotonic()
        call()
        elapsed = time.monotonic() - started
        best = elapsed if best is None else min(best, elapsed)
    return best


def main():
    args = parser(__doc__.splitlines()[0])
    args.set_defaults(db="bench_window_full")
    args.add_argument("--days", type=int, default=30)
    args = args.parse_args()
    since = (datetime.now(UTC) - timedelta(days=args.days)).strftime("%Y-%m-%d 00:00:00")
    held = sql(args.db, "SELECT (SELECT count(*) FROM iot_usage), (SELECT count(*) FROM iot_usage_bucket)")[0]
    print("machine: %s; %s: %d raw readings, %d buckets; window: since %s" % (machine(), args.db, *held, since))
    questions = {
        "pivot day x metric": (["bucket_start:day", "metric_id"], ["timestamp:day", "metric_id"]),
        "group by device": (["device_id"], ["device_id"]),
    }
    rows = []
    with OdooServer(args.db) as server:
        client = server.client()
        for name, (bucket_groups, raw_groups) in questions.items():
            buckets = best_of(lambda groups=bucket_groups: client(
                "iot.usage.bucket", "read_group", [("bucket_start", ">=", since)],
                ["quantity_sum:sum", "reading_count:sum"], groups, lazy=False))
            raw = best_of(lambda groups=raw_groups: client(
                "iot.usage", "read_group", [("timestamp", ">=", since)], ["quantity:sum"], groups, lazy=False))
            rows.append([name, "%.3f" % buckets, "%.3f" % raw, "%.0f %%" % (100 * buckets / raw)])
        first_page = best_of(lambda: client("iot.usage.bucket", "search_read", [("bucket_start", ">=", since)],
                                            ["bucket_start", "device_id", "metric_id", "quantity_sum"], limit=80))
        rows.append(["list, first page", "%.3f" % first_page, "", ""])
    print_table("Usage Analysis over %d days: buckets against raw readings (best of 3, seconds)" % args.days,
                ["question", "buckets s", "raw readings s", "buckets / raw"], rows)


if __name__ == "__main__":
    main()
