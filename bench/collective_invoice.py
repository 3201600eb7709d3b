#!/usr/bin/env python3
"""A parent's collective invoice for its subsidiaries' fleets, under Odoo's default limits.

    python3 bench/collective_invoice.py [--shapes 100x100,1000x10,1000x100]

For each shape S x D (S subsidiaries of one parent, D devices each), on a fresh copy of the
benchmark database, Odoo runs with its default limits (limit_time_real 120 s, limit_time_cpu
60 s), 2 HTTP workers and 2 cron workers:
  - over JSON-RPC: a one-month plan with an energy rule, the parent and one subsidiary whose
    contract (grouped by plan and period) has D devices, registered, activated and sent one
    April reading each;
  - the subsidiary is then multiplied to S by set-based SQL copies (partner, contract, devices,
    contract items, schedules, usage buckets): activating 100,000 devices through the API is not
    what this measures (bench/billing.py measures activation);
  - the April run over the API (``api_run``, then ``api_status`` until done).
Two modes per shape, each on its own copy: *parent* (every contract Bill Parent: one collective
invoice, a section per subsidiary) and, the baseline of the same run, *self* (the same contracts
Bill Self: one invoice per subsidiary). Ratio = parent time / self time.
"""

import time

from benchlib import OdooServer, connect, ensure_database, fresh_copy, machine, parser, print_table, sql

# A run not done after this long is reported as such (a chunk past Odoo's time limit is retried
# by the cron again and again: the run would never end).
RUN_DEADLINE = 400
PLAN = "ORG-PLAN"
REFERENCE = "ORG-SUB"

# Copied tables, in order: (table, kind of its rows, rows of the seed subsidiary).
COPIED = [
    ("res_partner", "partner", "id = %(partner)s"),
    ("iot_contract", "contract", "id = %(contract)s"),
    ("iot_billing_device", "device",
     "id IN (SELECT device_id FROM iot_contract_item WHERE contract_id = %(contract)s)"),
    ("iot_contract_item", "item", "contract_id = %(contract)s"),
    ("iot_invoicing_schedule", "schedule", "contract_id = %(contract)s"),
    ("iot_usage_bucket", "bucket",
     "device_id IN (SELECT device_id FROM iot_contract_item WHERE contract_id = %(contract)s)"),
]
# Columns naming a copied row: the copy names the row's copy (other values are kept: the parent).
REFERENCES = {"commercial_partner_id": "partner", "partner_id": "partner", "iot_payer_id": "partner",
              "contract_id": "contract", "device_id": "device", "contract_item_id": "item",
              "schedule_id": "schedule"}
SUFFIXED = {"res_partner": ("name", "complete_name"), "iot_contract": ("reference", "name"),
            "iot_billing_device": ("identifier", "name")}


def seed(client, devices, bill_to):
    plan = client("product.product", "create", {
        "name": "Camera Subscription", "default_code": PLAN, "type": "service", "list_price": 9.99,
        "iot_is_plan": True, "iot_duration_months": 1, "iot_end_of_term": "end"})
    template = client("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
    metric = client("iot.usage.metric", "search", [("code", "=", "kwh")])[0]
    client("iot.usage.calculator", "create", {"name": "Energy", "product_tmpl_id": template, "metric_id": metric,
                                              "pricing": "per_unit", "unit_price": 0.00005})
    parent = client("res.partner", "create", {"name": "Holding", "is_company": True})
    subsidiary = client("res.partner", "create", {"name": "Subsidiary", "is_company": True, "parent_id": parent})
    contract = client("iot.contract", "create", {"name": REFERENCE, "reference": REFERENCE, "partner_id": subsidiary,
                                                 "invoice_grouping": "plan_period", "iot_bill_to": bill_to})
    client("iot.contract", "action_start", [contract])
    identifiers = ["O-%05d" % n for n in range(devices)]
    client("iot_billing.device", "api_register", [{"identifier": identifier} for identifier in identifiers])
    result = client("iot_billing.device", "api_activate", [
        {"identifier": identifier, "contract": REFERENCE, "plan": PLAN, "date_start": "2022-04-01"}
        for identifier in identifiers])
    assert not [entry for entry in result if "error" in entry], result[:3]
    client("iot.usage", "api_ingest", [
        {"identifier": identifier, "metric": "kwh", "quantity": "%d.125" % (n % 997),
         "timestamp": "2022-04-15T12:00:00Z", "message_id": "m-%d" % n} for n, identifier in enumerate(identifiers)])
    return parent, subsidiary, contract


def multiply(db, subsidiary, contract, copies):
    """``copies`` more of the subsidiary, with its contract, devices, items, schedules and buckets."""
    connection = connect(db)
    cursor = connection.cursor()
    for table, kind, selection in COPIED:
        cursor.execute(
            "CREATE TEMP TABLE map_%s AS SELECT source.id AS old, copy, nextval('%s_id_seq') AS new "
            "FROM %s source, generate_series(1, %d) copy WHERE %s" % (
                kind, table, table, copies, selection % {"partner": subsidiary, "contract": contract}))
        cursor.execute("CREATE INDEX ON map_%s (old, copy)" % kind)
        cursor.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                       "AND column_name != 'id' ORDER BY ordinal_position", [table])
        columns = [row[0] for row in cursor.fetchall()]
        mapped = {kind for _table, kind, _selection in COPIED[:COPIED.index((table, kind, selection)) + 1]}
        values = []
        for column in columns:
            if REFERENCES.get(column) in mapped:
                values.append("coalesce((SELECT new FROM map_%s WHERE old = source.%s AND copy = map.copy), "
                              "source.%s)" % (REFERENCES[column], column, column))
            elif column in SUFFIXED.get(table, ()):
                values.append("source.%s || '-' || lpad(map.copy::text, 4, '0')" % column)
            else:
                values.append("source.%s" % column)
        cursor.execute("INSERT INTO %s (id, %s) SELECT map.new, %s FROM map_%s map JOIN %s source ON source.id = "
                       "map.old" % (table, ", ".join(columns), ", ".join(values), kind, table))
    for table, _kind, _selection in COPIED:
        cursor.execute("ANALYZE %s" % table)
    connection.close()


def scenario(args, subsidiaries, devices, bill_to):
    db = fresh_copy(args.db, args.db + "_collective")
    with OdooServer(db, workers=2, cron_workers=2) as server:
        client = server.client()
        parent, subsidiary, contract = seed(client, devices, bill_to)
        began = time.monotonic()
        multiply(db, subsidiary, contract, subsidiaries - 1)
        copying = time.monotonic() - began
        began = time.monotonic()
        result = client("iot.billing.run", "api_run", "2022-04-30")
        while result["state"] == "running" and time.monotonic() - began < RUN_DEADLINE:
            time.sleep(1)
            result = client("iot.billing.run", "api_status", result["run_id"])
        billing = time.monotonic() - began
        if result["state"] != "done" or result["errors"]:
            chunks, longest = sql(db, "SELECT count(*), max(duration) FROM iot_billing_run_chunk WHERE run_id = %s",
                                  [result["run_id"]])[0]
            print("  %dx%d %s: not done after %.0f s (state %s, %s chunks, longest %s s, errors %s)" % (
                subsidiaries, devices, bill_to, billing, result["state"], chunks, longest, result["errors"][:2]),
                flush=True)
            return {"shape": "%dx%d" % (subsidiaries, devices), "mode": bill_to, "billing": None}
        invoices = result["invoice_ids"]
        partners, sections, lines, untaxed = sql(db, """
            SELECT count(DISTINCT move.partner_id), count(*) FILTER (WHERE line.display_type = 'line_section'),
                   count(*) FILTER (WHERE line.display_type = 'product'),
                   (SELECT sum(amount_untaxed) FROM account_move WHERE id = ANY(%s))
              FROM account_move move JOIN account_move_line line ON line.move_id = move.id
             WHERE move.id = ANY(%s) AND move.state = 'posted'""", [invoices, invoices])[0]
        billed, members = sql(db, "SELECT count(*), sum(amount_total) FROM iot_invoicing_schedule "
                                  "WHERE invoice_id = ANY(%s)", [invoices])[0]
        expected_invoices = 1 if bill_to == "parent" else subsidiaries
        assert len(invoices) == expected_invoices and billed == subsidiaries * devices, (len(invoices), billed)
        assert round(untaxed, 2) == round(members, 2), (untaxed, members)
        if bill_to == "parent":
            assert partners == 1 and sections == subsidiaries, (partners, sections)
            assert sql(db, "SELECT partner_id FROM account_move WHERE id = %s", [invoices[0]])[0][0] == parent
        chunks, longest = sql(db, "SELECT count(*), max(duration) FROM iot_billing_run_chunk WHERE run_id = %s",
                              [result["run_id"]])[0]
    figures = {"shape": "%dx%d" % (subsidiaries, devices), "mode": bill_to, "copy": copying, "billing": billing,
               "invoices": len(invoices), "lines": lines, "sections": sections, "chunks": chunks,
               "longest": longest, "untaxed": untaxed}
    print("  %s" % {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}, flush=True)
    return figures


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--shapes", default="100x100,1000x10,1000x100")
    args = args.parse_args()
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    rows = []
    for shape in args.shapes.split(","):
        subsidiaries, devices = (int(value) for value in shape.split("x"))
        own = scenario(args, subsidiaries, devices, "self")
        collective = scenario(args, subsidiaries, devices, "parent")
        for figures in (own, collective):
            if figures["billing"] is None:
                rows.append([figures["shape"], figures["mode"], "not done"] + ["-"] * 7)
                continue
            rows.append([figures["shape"], figures["mode"], "%.1f" % figures["billing"], figures["invoices"],
                         figures["lines"], figures["sections"], figures["chunks"], "%.1f" % figures["longest"],
                         "%.2f" % figures["untaxed"],
                         "%.2f" % (figures["billing"] / own["billing"]) if own["billing"] else "-"])
    print_table("April run of S subsidiaries x D devices under default limits (2 cron workers)",
                ["shape", "bill", "billed s", "invoices", "product lines", "sections", "chunks",
                 "longest chunk s", "untaxed", "ratio vs self"], rows)


if __name__ == "__main__":
    main()
