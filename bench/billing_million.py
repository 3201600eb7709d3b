#!/usr/bin/env python3
"""One contract of a million devices billed under Odoo's default limits, and the slope from 100,000.

    python3 bench/billing_million.py [--sizes 100000,1000000] [--seed 1000]

For each size N, on a fresh copy of the benchmark database, Odoo runs with its default
limits (limit_time_real 120 s, limit_time_cpu 60 s), 2 HTTP workers and 2 cron workers:
  - over JSON-RPC: a one-month plan with an energy rule, one contract grouped by plan and
    period, --seed devices registered, activated and sent one April reading each;
  - the fleet is then multiplied to N devices by SQL copies of those rows (devices,
    contract items, schedules, usage buckets): activating a million devices through the API
    takes an hour here and is not what this measures (bench/billing.py measures activation);
  - the April run over the API (``api_run``, then ``api_status`` until done): the time to
    a posted invoice of N devices, valued, grouped and linked to every device's detail;
    then, when the company attaches the detail, until the detail file is attached.
Baseline, same run: the first size; slope = (time ratio) / (size ratio), 1.0 is linear.
"""

import time

from benchlib import OdooServer, connect, ensure_database, fresh_copy, machine, parser, print_table, sql

PLAN = "MILLION-PLAN"
REFERENCE = "MILLION-1"

# Rows that follow a device, copied with the device: table -> columns pointing at copied rows.
COPIED = [
    ("iot_billing_device", {}),
    ("iot_contract_item", {"device_id": "device"}),
    ("iot_invoicing_schedule", {"device_id": "device", "contract_item_id": "item"}),
    ("iot_usage_bucket", {"device_id": "device", "contract_item_id": "item", "schedule_id": "schedule"}),
]
MAPS = {"iot_billing_device": "device", "iot_contract_item": "item", "iot_invoicing_schedule": "schedule",
        "iot_usage_bucket": "bucket"}


def seed_fleet(client, devices):
    plan = client("product.product", "create", {
        "name": "Premium Fleet Subscription", "default_code": PLAN, "type": "service", "list_price": 9.99,
        "iot_is_plan": True, "iot_duration_months": 1, "iot_end_of_term": "end"})
    template = client("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
    metric = client("iot.usage.metric", "search", [("code", "=", "kwh")])[0]
    client("iot.usage.calculator", "create", {"name": "Energy", "product_tmpl_id": template, "metric_id": metric,
                                              "pricing": "per_unit", "unit_price": 0.00005})
    partner = client("res.partner", "create", {"name": "Million customer"})
    contract = client("iot.contract", "create", {"name": REFERENCE, "reference": REFERENCE, "partner_id": partner,
                                                 "invoice_grouping": "plan_period"})
    client("iot.contract", "action_start", [contract])
    identifiers = ["M-%06d" % n for n in range(devices)]
    client("iot_billing.device", "api_register", [{"identifier": identifier} for identifier in identifiers])
    result = client("iot_billing.device", "api_activate", [
        {"identifier": identifier, "contract": REFERENCE, "plan": PLAN, "date_start": "2022-04-01"}
        for identifier in identifiers])
    assert not [entry for entry in result if "error" in entry], result[:3]
    client("iot.usage", "api_ingest", [
        {"identifier": identifier, "metric": "kwh", "quantity": "%d.125" % (n % 997),
         "timestamp": "2022-04-15T12:00:00Z", "message_id": "m-%d" % n} for n, identifier in enumerate(identifiers)])
    return contract


def multiply(db, contract, copies):
    """``copies`` more of every device of the contract, with their items, schedules and buckets."""
    connection = connect(db)
    cursor = connection.cursor()
    seed = "(SELECT device_id FROM iot_contract_item WHERE contract_id = %d)" % contract
    selections = {
        "iot_billing_device": "id IN " + seed,
        "iot_contract_item": "contract_id = %d" % contract,
        "iot_invoicing_schedule": "contract_id = %d" % contract,
        "iot_usage_bucket": "device_id IN " + seed,
    }
    for table, references in COPIED:
        kind = MAPS[table]
        cursor.execute(
            "CREATE TEMP TABLE map_%s AS SELECT source.id AS old, copy, nextval('%s_id_seq') AS new "
            "FROM %s source, generate_series(1, %d) copy WHERE source.%s" % (
                kind, table, table, copies, selections[table]))
        cursor.execute("CREATE INDEX ON map_%s (old, copy)" % kind)
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                       "AND column_name != 'id' ORDER BY ordinal_position", [table])
        columns = [row[0] for row in cursor.fetchall()]
        values = []
        for column in columns:
            if column in references:
                values.append("(SELECT new FROM map_%s WHERE old = source.%s AND copy = map.copy)" % (
                    references[column], column))
            elif table == "iot_billing_device" and column in ("identifier", "name"):
                values.append("source.%s || '-' || map.copy" % column)
            else:
                values.append("source.%s" % column)
        cursor.execute("INSERT INTO %s (id, %s) SELECT map.new, %s FROM map_%s map JOIN %s source ON source.id = "
                       "map.old" % (table, ", ".join(columns), ", ".join(values), kind, table))
    for table, _references in COPIED:
        cursor.execute("ANALYZE %s" % table)
    connection.close()


def scenario(args, devices):
    db = fresh_copy(args.db, args.db + "_million")
    with OdooServer(db, workers=2, cron_workers=2) as server:
        client = server.client()
        contract = seed_fleet(client, args.seed)
        began = time.monotonic()
        multiply(db, contract, devices // args.seed - 1)
        copying = time.monotonic() - began
        if args.attach_detail:
            client("res.company", "write", [1], {"iot_attach_detail": True})
        began = time.monotonic()
        result = client("iot.billing.run", "api_run", "2022-04-30")
        while result["state"] == "running":
            time.sleep(1)
            result = client("iot.billing.run", "api_status", result["run_id"])
        billing = time.monotonic() - began
        assert result["state"] == "done" and not result["errors"], result
        (invoice,) = result["invoice_ids"]
        detail = None
        if args.attach_detail:
            while not sql(db, "SELECT iot_detail_attachment_id FROM account_move WHERE id = %s", [invoice])[0][0]:
                time.sleep(1)
            detail = time.monotonic() - began
        state, untaxed, lines = sql(db, "SELECT state, amount_untaxed, (SELECT count(*) FROM account_move_line "
                                        "WHERE move_id = %s AND display_type = 'product') FROM account_move "
                                        "WHERE id = %s", [invoice, invoice])[0]
        billed, members = sql(db, "SELECT count(*), sum(amount_total) FROM iot_invoicing_schedule "
                                  "WHERE invoice_id = %s", [invoice])[0]
        assert state == "posted" and billed == devices and round(untaxed, 2) == round(members, 2), (
            state, billed, untaxed, members)
        chunks, longest, workers = sql(db, "SELECT count(*), max(duration), count(DISTINCT worker) "
                                           "FROM iot_billing_run_chunk WHERE run_id = %s", [result["run_id"]])[0]
    figures = {"devices": devices, "copy": copying, "billing": billing, "detail": detail, "lines": lines,
               "chunks": chunks, "longest": longest, "workers": workers, "untaxed": untaxed}
    print("  %s" % {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}, flush=True)
    return figures


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--sizes", default="100000,1000000")
    args.add_argument("--seed", type=int, default=1000, help="devices activated over the API, then copied")
    args.add_argument("--attach-detail", action="store_true", help="the company attaches the detail file")
    args = args.parse_args()
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    results = [scenario(args, int(size)) for size in args.sizes.split(",")]
    base = results[0]
    rows = [[f["devices"], "%.0f" % f["copy"], "%.1f" % f["billing"],
             "%.1f" % f["detail"] if f["detail"] else "-", f["lines"], f["chunks"], "%.1f" % f["longest"],
             f["workers"], "%.2f" % (f["billing"] / base["billing"] / (f["devices"] / base["devices"]))]
            for f in results]
    print_table("One contract, April run under default limits (2 cron workers)",
                ["devices", "copy s", "billed s", "detail attached s", "invoice lines", "chunks",
                 "longest chunk s", "workers", "slope vs first"], rows)


if __name__ == "__main__":
    main()
