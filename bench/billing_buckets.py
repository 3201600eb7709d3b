#!/usr/bin/env python3
"""Billing from usage buckets against the raw-reading valuation before them, and its growth
with the readings per device.

    python3 bench/billing_buckets.py --before <git ref> [--devices 2000] [--readings 1,100]

For the code of ``--before`` (valuation reading every raw reading) and this code (reading
usage buckets), on a fresh database each: ``--devices`` devices on one contract, R readings per
device in April (one a minute, as a streetlight reports), then the April billing run over
JSON-RPC (valuation, grouped posted invoice). Odoo's default limits, 2 workers. Prints the run's
time per code and R, the ratio after / before, and each code's growth from the smallest R to
the largest (1.0: billing does not depend on the raw readings per device).
"""

import os
import subprocess
import time

from benchlib import ROOT, OdooServer, fresh_copy, install, machine, parser, print_table, sql

PLAN = "BB-PLAN"



def setup(client, devices, readings):
    plan = client("product.product", "create", {
        "name": "Streetlight plan", "default_code": PLAN, "type": "service", "list_price": 1.0,
        "iot_is_plan": True, "iot_duration_months": 12})
    template = client("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
    metric = client("iot.usage.metric", "search", [("code", "=", "kwh")])[0]
    client("iot.usage.calculator", "create", {
        "name": "Energy", "product_tmpl_id": template, "metric_id": metric, "pricing": "per_unit",
        "unit_price": 0.0005})
    contract = client("iot.contract", "create", {
        "name": "City", "reference": "BB-CITY", "tz": "UTC",
        "partner_id": client("res.partner", "create", {"name": "City of Bench"})})
    client("iot.contract", "action_start", [contract])
    identifiers = ["BB-%05d" % n for n in range(devices)]
    client("iot_billing.device", "api_register", [{"identifier": identifier} for identifier in identifiers])
    result = client("iot_billing.device", "api_activate", [
        {"identifier": identifier, "contract": "BB-CITY", "plan": PLAN, "date_start": "2022-04-01"}
        for identifier in identifiers])
    assert not [entry for entry in result if "error" in entry]
    batch = []
    for minute in range(readings):
        for identifier in identifiers:
            batch.append({
                "identifier": identifier, "metric": "kwh", "quantity": "0.%03d" % (minute % 1000),
                "timestamp": "2022-04-15T%02d:%02d:00Z" % (minute // 60 % 24, minute % 60),
                "message_id": "%s-%d" % (identifier, minute)})
            if len(batch) == 10000:
                client("iot.usage", "api_ingest", batch)
                batch = []
    if batch:
        client("iot.usage", "api_ingest", batch)


def bill(client):
    began = time.monotonic()
    result = client("iot.billing.run", "api_run", "2022-04-30")
    while result.get("state") == "running":  # a run larger than one chunk answers at once
        time.sleep(0.5)
        result = client("iot.billing.run", "api_status", result["run_id"])
    elapsed = time.monotonic() - began
    assert not result["errors"] and result["invoice_ids"], result
    return elapsed, result["invoice_ids"]


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--before", required=True, help="git ref of the code without usage buckets")
    args.add_argument("--devices", type=int, default=2000)
    args.add_argument("--readings", default="1,100", help="readings per device in the period")
    args = args.parse_args()
    before_tree = "/tmp/bench-before-%s" % args.before
    if not os.path.isdir(before_tree):
        subprocess.run(["git", "worktree", "add", "--detach", before_tree, args.before], cwd=ROOT, check=True)
    trees = {"before": before_tree, "after": ROOT}
    counts = [int(count) for count in args.readings.split(",")]
    print("machine: %s" % machine())
    for name, tree in trees.items():
        print("installing bench_bb_%s_template ..." % name, flush=True)
        install(tree, "bench_bb_%s_template" % name)
    times = {}
    for count in counts:
        for name, tree in trees.items():
            db = fresh_copy("bench_bb_%s_template" % name, "bench_bb_%s" % name)
            with OdooServer(db, workers=2, root=tree,
                            log_path="/tmp/bench-bb-%s.log" % name) as server:
                client = server.client()
                setup(client, args.devices, count)
                elapsed, invoices = bill(client)
            amount = sql(db, "SELECT sum(amount_untaxed)::text FROM account_move WHERE id = ANY(%s)", (invoices,))
            times[name, count] = elapsed
            print("  %s, %d readings/device: billed in %.2f s (untaxed %s)" % (name, count, elapsed, amount[0][0]),
                  flush=True)
    rows = [[count, "%.2f" % times["before", count], "%.2f" % times["after", count],
             "%.0f %%" % (100 * times["after", count] / times["before", count])] for count in counts]
    print_table("April billing run of %d devices on one contract, default limits" % args.devices,
                ["readings/device", "before s", "after s", "after/before"], rows)
    for name in trees:
        print("%s: growth from %d to %d readings per device: x%.2f" % (
            name, counts[0], counts[-1], times[name, counts[-1]] / times[name, counts[0]]))


if __name__ == "__main__":
    main()
