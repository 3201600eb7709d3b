#!/usr/bin/env python3
"""Where holding a period costs: one billing chunk of contracts below their invoicing level, profiled.

    python3 bench/threshold_hold_profile.py --db cycles_bench [--contracts 50]

In process, on a fresh copy of the benchmark database: --contracts one-device contracts on a
plan at 9.90 with an energy rule (activated through the API methods, one April reading each),
then one chunk of the April run (what a chunk cron does in one transaction) under cProfile, its
SQL statements counted: with the company's invoicing level at 20.00 every contract is held (the
usage valued, the hold decided and written, no invoice); baseline, same run, same data: the same
chunk without a level (every contract invoiced: account.move create and post). Each chunk is
rolled back; a first one, not counted, warms the caches.
"""

import cProfile
import os
import pstats
import time

from benchlib import ROOT, fresh_copy, machine, parser, print_table

PARTS = [
    ("valuation (_iot_value_usage)", "_iot_value_usage", "iot_usage/models"),
    ("line parts (_iot_invoice_line_parts)", "_iot_invoice_line_parts", "iot_usage/models"),
    ("hold decision (_iot_invoice_periods)", "_iot_invoice_periods", "iot_invoice_threshold"),
    ("  of which the level (_iot_invoicing_level)", "_iot_invoicing_level", "iot_invoice_threshold"),
    ("  of which the next invoice date (_iot_next_invoice_date)", "_iot_next_invoice_date", "iot_invoice_threshold"),
    ("account.move create (Odoo)", "create", "account/models/account_move.py"),
    ("account.move post, _post (Odoo)", "_post", "account/models/account_move.py"),
]


def cumulative(stats, function_name, path_part):
    """Cumulative seconds of the profiled function ``function_name`` in a file matching ``path_part``."""
    return max((cum for (path, _line, name), (_cc, _nc, _tt, cum, _callers) in stats.stats.items()
                if name == function_name and path_part in path), default=0.0)


def profiled_chunk(env, level, contracts):
    """One chunk of the April run at the company's ``level``: (seconds, SQL statements, stats, run)."""
    env.company.iot_invoice_threshold = level
    run = env["iot.billing.run"].create({"date": "2022-04-30"})
    run.write({"state": "running", "prepared": True})
    env.flush_all()
    profiler = cProfile.Profile()
    queries = env.cr.sql_log_count
    began = time.monotonic()
    profiler.enable()
    outcome = env["iot.billing.engine"]._bill_next_chunk(run)
    env.flush_all()
    profiler.disable()
    seconds = time.monotonic() - began
    queries = env.cr.sql_log_count - queries
    assert outcome == "billed", outcome
    held = env["iot.invoicing.schedule"].search_count([("iot_hold_run_id", "=", run.id), ("state", "=", "planned")])
    expected = (0, contracts) if level else (contracts, 0)
    assert (run.invoice_count, held) == expected, (run.invoice_count, held, expected)
    return seconds, queries, pstats.Stats(profiler)


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--contracts", type=int, default=50, help="contracts of the chunk (at most a chunk's 50)")
    args = args.parse_args()
    print("machine: %s" % machine())
    db = fresh_copy(args.db, args.db + "_hold")

    import odoo
    from odoo import SUPERUSER_ID, api

    odoo.tools.config.parse_config(["-c", os.path.join(ROOT, "odoo.conf"), "-d", db, "--log-level=warn"])
    registry = odoo.modules.registry.Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        plan = env["product.product"].create({"name": "Hold plan", "default_code": "HOLD", "type": "service",
                                              "list_price": 9.90, "iot_is_plan": True, "iot_duration_months": 12})
        metric = env["iot.usage.metric"].search([("code", "=", "kwh")])
        env["iot.usage.calculator"].create({"name": "Energy", "product_tmpl_id": plan.product_tmpl_id.id,
                                            "metric_id": metric.id, "pricing": "per_unit", "unit_price": 0.01})
        references = ["HOLD-%d" % n for n in range(args.contracts)]
        partners = env["res.partner"].create([{"name": "Customer " + reference} for reference in references])
        env["iot.contract"].create([
            {"name": reference, "reference": reference, "partner_id": partner.id}
            for reference, partner in zip(references, partners, strict=True)]).action_start()
        Device = env["iot_billing.device"]
        Device.api_register([{"identifier": reference} for reference in references])
        Device.api_activate([{"identifier": reference, "contract": reference, "plan": "HOLD",
                              "date_start": "2022-04-01"} for reference in references])
        env["iot.usage"].api_ingest([
            {"identifier": reference, "metric": "kwh", "quantity": str(n % 41), "timestamp": "2022-04-15T12:00:00Z",
             "message_id": "r-" + reference} for n, reference in enumerate(references)])
        cr.commit()
        profiled_chunk(env, 20.0, args.contracts)  # warm-up: caches filled as for the measured chunks
        cr.rollback()
        held = profiled_chunk(env, 20.0, args.contracts)
        cr.rollback()
        invoiced = profiled_chunk(env, 0.0, args.contracts)
        cr.rollback()

    per = 1000 / args.contracts
    rows = [["whole chunk, profiled", "%.2f" % held[0], "%.1f" % (held[0] * per), "%.2f" % invoiced[0],
             "%.1f" % (invoiced[0] * per)],
            ["SQL statements", held[1], "%.1f" % (held[1] / args.contracts), invoiced[1],
             "%.1f" % (invoiced[1] / args.contracts)]]
    for label, function_name, path_part in PARTS:
        seconds = [cumulative(stats, function_name, path_part) for stats in (held[2], invoiced[2])]
        rows.append([label, "%.2f" % seconds[0], "%.1f" % (seconds[0] * per), "%.2f" % seconds[1],
                     "%.1f" % (seconds[1] * per)])
    print_table("One chunk of %d one-device contracts, April run (cProfile; per contract)" % args.contracts,
                ["part", "held s", "held ms / contract", "invoiced s (baseline)", "invoiced ms / contract"], rows)


if __name__ == "__main__":
    main()
