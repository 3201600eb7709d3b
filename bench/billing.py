#!/usr/bin/env python3
"""Activation and monthly billing at fleet scale, over RPC, against one-line-per-device invoicing.

    python3 bench/billing.py [--sizes 10000,100000] [--baseline 2000] [--contracts 1000]

For each fleet size N, on a fresh copy of the benchmark database:
  - register N devices and activate them on one fleet contract (12-month plan,
    so 12 N schedules), over JSON-RPC: the activation time;
  - one usage reading per device in April, then the April billing run
    (iot.billing.run.api_run: valuation, grouped and posted invoice), then the
    invoice's detail as XLSX and CSV over the API.
Baseline, same run: the same billing with the grouping policy "none" (one invoice
line per device and part) on --baseline devices; its per-device cost times N is
what one-line-per-device invoicing would take. Then N devices spread over
--contracts contracts. Slopes: time ratio between sizes over size ratio.
"""

import base64
import time

from benchlib import OdooServer, ensure_database, fresh_copy, machine, parser, print_table, sql

PLAN = "BENCH-PLAN"


def setup_fleet(client, prefix, devices, contracts, policy):
    """Plan, contracts and devices (registered then activated); returns the activation time."""
    if not client("product.product", "search", [("default_code", "=", PLAN)]):
        plan = client("product.product", "create", {
            "name": "Premium Fleet Subscription", "default_code": PLAN, "type": "service",
            "list_price": 9.99, "iot_is_plan": True, "iot_duration_months": 12})
        template = client("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
        metric = client("iot.usage.metric", "search", [("code", "=", "kwh")])[0]
        client("iot.usage.calculator", "create", {
            "name": "Energy", "product_tmpl_id": template, "metric_id": metric,
            "pricing": "per_unit", "unit_price": 0.00005})
    references = []
    for number in range(contracts):
        reference = "%s-C%04d" % (prefix, number)
        contract = client("iot.contract", "create", {
            "name": reference, "reference": reference, "invoice_grouping": policy,
            "partner_id": client("res.partner", "create", {"name": "Customer " + reference})})
        client("iot.contract", "action_start", [contract])
        references.append(reference)
    identifiers = ["%s-%06d" % (prefix, n) for n in range(devices)]
    for start in range(0, devices, 10000):
        client("iot_billing.device", "api_register", [{"identifier": i} for i in identifiers[start:start + 10000]])
    began = time.monotonic()
    for start in range(0, devices, 10000):
        result = client("iot_billing.device", "api_activate", [
            {"identifier": identifier, "contract": references[(start + n) % contracts], "plan": PLAN,
             "date_start": "2022-04-01"}
            for n, identifier in enumerate(identifiers[start:start + 10000])])
        errors = [entry for entry in result if "error" in entry]
        assert not errors, errors[:3]
    activation = time.monotonic() - began
    for start in range(0, devices, 10000):
        client("iot.usage", "api_ingest", [
            {"identifier": identifier, "metric": "kwh", "quantity": "%d.125" % (n % 997),
             "timestamp": "2022-04-15T12:00:00Z", "message_id": "%s-r%d" % (prefix, n)}
            for n, identifier in enumerate(identifiers[start:start + 10000], start)])
    return activation


def bill(client, db):
    """The April run: answered at once when it fits in one chunk, else polled until the chunk
    crons have billed it (the server needs cron workers then)."""
    began = time.monotonic()
    result = client("iot.billing.run", "api_run", "2022-04-30")
    while result["state"] == "running":
        time.sleep(0.25)
        result = client("iot.billing.run", "api_status", result["run_id"])
    elapsed = time.monotonic() - began
    assert result["state"] == "done" and not result["errors"], (result["state"], result["errors"][:3])
    invoices = result["invoice_ids"]
    lines, posted = sql(db, "SELECT count(*), count(DISTINCT move_id) FILTER (WHERE parent_state = 'posted') "
                            "FROM account_move_line WHERE move_id = ANY(%s) AND display_type = 'product'",
                        (invoices,))[0]
    untaxed, members = sql(db, """
        SELECT (SELECT sum(amount_untaxed) FROM account_move WHERE id = ANY(%(ids)s)),
               (SELECT sum(amount_total) FROM iot_invoicing_schedule WHERE invoice_id = ANY(%(ids)s))""",
                           {"ids": invoices})[0]
    assert posted == len(invoices) and round(untaxed, 2) == round(members, 2), (posted, untaxed, members)
    return elapsed, invoices, lines


def export(client, invoice, file_format):
    began = time.monotonic()
    detail = client("account.move", "api_iot_invoice_detail", invoice, file_format)
    return time.monotonic() - began, len(base64.b64decode(detail["content"]))


def scenario(args, name, devices, contracts, policy, with_export=False, cron_workers=2):
    """On a fresh database, Odoo with its default limits, 2 HTTP workers and ``cron_workers``
    cron worker processes (the billing run's chunk workers)."""
    db = fresh_copy(args.db, args.db + "_run")
    with OdooServer(db, workers=2, cron_workers=cron_workers) as server:
        client = server.client()
        activation = setup_fleet(client, name, devices, contracts, policy)
        billing, invoices, lines = bill(client, db)
        chunks = sql(db, "SELECT count(*), max(duration), count(DISTINCT worker) FROM iot_billing_run_chunk "
                         "WHERE run_id = (SELECT max(id) FROM iot_billing_run)")[0]
        figures = {"devices": devices, "contracts": contracts, "policy": policy, "activation": activation,
                   "billing": billing, "invoices": len(invoices), "lines": lines, "cron_workers": cron_workers,
                   "chunks": chunks[0], "longest_chunk": chunks[1] or 0.0, "chunk_workers": chunks[2]}
        if with_export:
            figures["xlsx"], figures["xlsx_bytes"] = export(client, invoices[0], "xlsx")
            figures["csv"], figures["csv_bytes"] = export(client, invoices[0], "csv")
    print("  %s: %s" % (name, {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}),
          flush=True)
    return figures


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--sizes", default="10000,100000", help="fleet sizes (devices on one contract)")
    args.add_argument("--baseline", type=int, default=2000, help="devices billed one line per device")
    args.add_argument("--contracts", type=int, default=1000, help="contracts for the spread scenario")
    args.add_argument("--spread-devices", type=int, default=10000)
    args.add_argument("--skip", default="", help="comma-separated: grouped,naive,spread,parallel")
    args = args.parse_args()
    skip = set(args.skip.split(","))
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    sizes = [int(size) for size in args.sizes.split(",")]
    grouped = [] if "grouped" in skip else [
        scenario(args, "G%d" % size, size, 1, "plan_period", with_export=True) for size in sizes]
    naive = scenario(args, "N%d" % args.baseline, args.baseline, 1, "none")
    spreads = [] if "spread" in skip else [
        scenario(args, "S%d" % args.spread_devices, args.spread_devices, args.contracts, "plan_period",
                 cron_workers=workers) for workers in ((1, 2) if "parallel" not in skip else (2,))]
    naive_per_device = naive["billing"] / naive["devices"]
    rows = []
    for figures in grouped + [naive] + spreads:
        rows.append([figures["devices"], figures["contracts"], figures["policy"], figures["cron_workers"],
                     "%.1f" % figures["activation"], "%.1f" % figures["billing"], figures["invoices"],
                     figures["lines"], figures["chunks"], "%.1f" % figures["longest_chunk"],
                     "%.0f" % (naive_per_device * figures["devices"]),
                     "%.1f x" % (naive_per_device * figures["devices"] / figures["billing"])])
    print_table("Activation over RPC and April billing run (valuation + posted invoices), default limits",
                ["devices", "contracts", "grouping", "cron workers", "activate s", "bill s", "invoices", "lines",
                 "chunks", "longest chunk s", "1 line/device s (est.)", "speed-up"], rows)
    if not grouped:
        return
    print_table("Detail export over the API (first invoice)",
                ["devices", "xlsx s", "xlsx MB", "csv s", "csv MB"],
                [[f["devices"], "%.1f" % f["xlsx"], "%.1f" % (f["xlsx_bytes"] / 1e6), "%.1f" % f["csv"],
                  "%.1f" % (f["csv_bytes"] / 1e6)] for f in grouped])
    if len(grouped) > 1:
        small, large = grouped[0], grouped[-1]
        growth = large["devices"] / small["devices"]
        print_table("How cost grows (time ratio / size ratio; 1.0 = linear)",
                    ["step", "activation", "billing"],
                    [["%d -> %d" % (small["devices"], large["devices"]),
                      "%.2f" % (large["activation"] / small["activation"] / growth),
                      "%.2f" % (large["billing"] / small["billing"] / growth)]])


if __name__ == "__main__":
    main()
