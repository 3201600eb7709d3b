#!/usr/bin/env python3
"""Revenue share settlement of one month of a large fleet, under Odoo's default time limits.

    python3 bench/revenue_share.py [--sizes 10000,100000]

For each fleet size N, on a fresh copy of the benchmark database: N streetlights on one contract
(plan 3.00 a month + energy at 0.00005 per kWh, one April reading each), owned by a vendor who
receives 30 % (rule on the plan, beneficiary = the device's owner); the April billing run; then
the April settlement over JSON-RPC (the wizard's method, as an accountant would run it): shares of
2 N device parts computed, recorded, one vendor bill posted, the CSV detail attached.
The Odoo server runs with Odoo's default limits (limit_time_real 120 s): a settlement that did
not fit would fail here. Baseline, same run and fleet: the April billing run itself.
Checks: the bill is exactly 30 % of the invoice's untaxed amount; a second run settles nothing.
"""

import time
from decimal import ROUND_HALF_UP, Decimal

from benchlib import OdooServer, ensure_database, fresh_copy, machine, parser, print_table, sql
from billing import bill, setup_fleet


def settle(client, period):
    wizard = client("iot.revenue.share.settle.wizard", "create", {"period": period, "mode": "bill"})
    began = time.monotonic()
    action = client("iot.revenue.share.settle.wizard", "action_settle", [wizard])
    return time.monotonic() - began, action["domain"][0][2]


def scenario(args, devices):
    db = fresh_copy(args.db, args.db + "_rs")
    # Setting the fleet up and billing it are other benchmarks' subject (bench/billing.py).
    with OdooServer(db, workers=2, cron_workers=2) as server:
        client = server.client()
        setup_fleet(client, "RS%d" % devices, devices, 1, "plan_period")
        vendor = client("res.partner", "create", {"name": "LumenWorks", "is_company": True})
        sql(db, "UPDATE iot_billing_device SET iot_owner_partner_id = %s", (vendor,))
        template = client("product.product", "search_read", [("default_code", "=", "BENCH-PLAN")],
                          ["product_tmpl_id"])[0]["product_tmpl_id"][0]
        client("iot.revenue.share.rule", "create", {
            "name": "Vendor 30 %", "product_tmpl_id": template, "beneficiary": "device_owner",
            "percent": 30, "date_start": "2022-01-01"})
        billing, invoices, _lines = bill(client, db)
    # The settlement, threaded as before (every server of the benchmarks has Odoo's default limits).
    with OdooServer(db, workers=0) as server:
        client = server.client()
        settlement, settlement_ids = settle(client, "2022-04")
        again, again_ids = settle(client, "2022-04")
    untaxed = sql(db, "SELECT sum(amount_untaxed) FROM account_move WHERE id = ANY(%s)", (invoices,))[0][0]
    bill_untaxed, share_lines, bill_lines, attachment_bytes = sql(db, """
        SELECT move.amount_untaxed,
               (SELECT count(*) FROM iot_revenue_share_line WHERE settlement_id = s.id),
               (SELECT count(*) FROM account_move_line WHERE move_id = move.id AND display_type = 'product'),
               (SELECT file_size FROM ir_attachment WHERE id = s.detail_attachment_id)
          FROM iot_revenue_share_settlement s JOIN account_move move ON move.id = s.move_id
         WHERE s.id = ANY(%s)""", (settlement_ids,))[0]
    expected = (Decimal(untaxed) * Decimal("0.3")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    assert Decimal(bill_untaxed) == expected, (bill_untaxed, expected)
    assert not again_ids, "the second run settled again"
    figures = {"devices": devices, "billing": billing, "settlement": settlement, "again": again,
               "share_lines": share_lines, "bill_lines": bill_lines, "untaxed": untaxed,
               "bill": bill_untaxed, "detail_mb": attachment_bytes / 1e6}
    print("  %s" % {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}, flush=True)
    return figures


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--sizes", default="10000,100000", help="fleet sizes (devices on one contract)")
    args = args.parse_args()
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    results = [scenario(args, int(size)) for size in args.sizes.split(",")]
    print_table(
        "April settlement, 30 % to the devices' owner (default limits; baseline: the April billing run)",
        ["devices", "share lines", "bill lines", "billed untaxed", "vendor bill", "settle s", "re-run s",
         "billing s", "settle / billing", "detail csv MB"],
        [[f["devices"], f["share_lines"], f["bill_lines"], f["untaxed"], f["bill"], "%.1f" % f["settlement"],
          "%.1f" % f["again"], "%.1f" % f["billing"], "%.2f" % (f["settlement"] / f["billing"]),
          "%.1f" % f["detail_mb"]] for f in results])
    if len(results) > 1:
        small, large = results[0], results[-1]
        print_table("How cost grows (time ratio / size ratio; 1.0 = linear)", ["step", "settlement"],
                    [["%d -> %d" % (small["devices"], large["devices"]),
                      "%.2f" % (large["settlement"] / small["settlement"] / (large["devices"] / small["devices"]))]])


if __name__ == "__main__":
    main()
