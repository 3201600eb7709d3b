#!/usr/bin/env python3
"""Where one billing chunk of small contracts spends its time: Odoo's account.move or ours.

    python3 bench/billing_chunk_profile.py [--contracts 50] [--devices-per-contract 10]

In process, on a fresh copy of the benchmark database: --contracts contracts of
--devices-per-contract devices each (activated through the API methods, one reading
per device in April), then one chunk of the April run (what a chunk cron bills in
one transaction: valuation, one account.move create for all contracts, their post)
under cProfile. Prints the chunk's time, the share of Odoo's ``account.move``
create and post, of the valuation and of the rest, per invoice. Baseline, same run:
the same contracts' invoices created and posted by hand-built values alone (what
Odoo costs for these invoices with nothing of ours around it).
"""

import cProfile
import os
import pstats
import time

from benchlib import ROOT, ensure_database, fresh_copy, machine, parser, print_table


def cumulative(stats, function_name, path_part):
    """Cumulative seconds of the first profiled function matching ``function_name`` and a path part."""
    best = 0.0
    for (path, _line, name), (_cc, _nc, _tt, cum, _callers) in stats.stats.items():
        if name == function_name and path_part in path:
            best = max(best, cum)
    return best


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--contracts", type=int, default=50)
    args.add_argument("--devices-per-contract", type=int, default=10)
    args = args.parse_args()
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    db = fresh_copy(args.db, args.db + "_chunk")

    import odoo
    from odoo import SUPERUSER_ID, Command, api

    odoo.tools.config.parse_config(["-c", os.path.join(ROOT, "odoo.conf"), "-d", db, "--log-level=warn"])
    registry = odoo.modules.registry.Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        plan = env["product.product"].create({"name": "Chunk plan", "default_code": "CHUNK", "type": "service",
                                              "list_price": 9.99, "iot_is_plan": True,
                                              "iot_duration_months": 12})
        metric = env["iot.usage.metric"].search([("code", "=", "kwh")])
        env["iot.usage.calculator"].create({"name": "Energy", "product_tmpl_id": plan.product_tmpl_id.id,
                                            "metric_id": metric.id, "pricing": "per_unit", "unit_price": 0.00005})
        partner = env["res.partner"].create({"name": "Chunk customer"})
        contracts = env["iot.contract"].create([
            {"name": "C%d" % n, "reference": "CHUNK-%d" % n, "partner_id": partner.id,
             "invoice_grouping": "plan_period"} for n in range(args.contracts)])
        contracts.action_start()
        Device = env["iot_billing.device"]
        identifiers = ["CH-%d-%d" % (c, d) for c in range(args.contracts) for d in range(args.devices_per_contract)]
        Device.api_register([{"identifier": identifier} for identifier in identifiers])
        Device.api_activate([
            {"identifier": identifier, "contract": "CHUNK-%s" % identifier.split("-")[1], "plan": "CHUNK",
             "date_start": "2022-04-01"} for identifier in identifiers])
        env["iot.usage"].api_ingest([
            {"identifier": identifier, "metric": "kwh", "quantity": "12.5", "timestamp": "2022-04-15T12:00:00Z",
             "message_id": "r-" + identifier} for identifier in identifiers])
        env["ir.config_parameter"].set_param("iot_contract.billing_chunk_contracts", str(args.contracts))
        cr.commit()

        run = env["iot.billing.run"].create({"date": "2022-04-30"})
        run.write({"state": "running", "prepared": True})
        profiler = cProfile.Profile()
        began = time.monotonic()
        profiler.enable()
        outcome = env["iot.billing.engine"]._bill_next_chunk(run)
        env.flush_all()
        profiler.disable()
        chunk = time.monotonic() - began
        assert outcome == "billed" and run.invoice_count == args.contracts, (outcome, run.invoice_count)
        stats = pstats.Stats(profiler)
        figures = {
            "account.move create": cumulative(stats, "create", "account/models/account_move.py"),
            "account.move post (_post)": cumulative(stats, "_post", "account/models/account_move.py"),
            "valuation (_iot_value_usage)": cumulative(stats, "_iot_value_usage", "iot_usage"),
            "line parts (_iot_invoice_line_parts)": cumulative(stats, "_iot_invoice_line_parts", "iot_usage"),
            "grouped lines (_iot_prepare_invoice_lines)": cumulative(
                stats, "_iot_prepare_invoice_lines", "iot_invoice_grouping"),
        }
        cr.rollback()

        # Baseline: the same invoices (one line each) built from plain values, created and posted.
        journal = env["account.journal"].search([("type", "=", "sale"), ("company_id", "=", env.company.id)], limit=1)
        began = time.monotonic()
        moves = env["account.move"].create([
            {"move_type": "out_invoice", "partner_id": partner.id, "journal_id": journal.id,
             "invoice_date": "2022-04-30",
             "invoice_line_ids": [Command.create({"product_id": plan.id, "quantity": args.devices_per_contract,
                                                  "price_unit": 9.99, "name": "plan"}),
                                  Command.create({"name": "usage", "quantity": 1, "price_unit": 0.01})]}
            for _n in range(args.contracts)])
        moves.action_post()
        env.flush_all()
        baseline = time.monotonic() - began
        cr.rollback()

    per_invoice = 1000 / args.contracts
    rows = [["chunk (ours + Odoo), profiled", "%.2f" % chunk, "%.1f" % (chunk * per_invoice)]]
    rows += [[name, "%.2f" % seconds, "%.1f" % (seconds * per_invoice)] for name, seconds in figures.items()]
    rows.append(["baseline: same invoices from plain values, not profiled", "%.2f" % baseline,
                 "%.1f" % (baseline * per_invoice)])
    print_table("One chunk: %d contracts x %d devices (cumulative seconds under cProfile; ms per invoice)"
                % (args.contracts, args.devices_per_contract), ["part", "s", "ms / invoice"], rows)


if __name__ == "__main__":
    main()
