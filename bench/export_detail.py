#!/usr/bin/env python3
"""Detail export of one invoice of N devices (2 rows per device) to XLSX and CSV: time and memory.

    python3 bench/export_detail.py [--devices 50000]

Bills N devices (fixed fee + usage each, so 2 N detail rows) on a fresh copy of the
benchmark database, then exports the invoice's detail in a new process per format
and reports the time and the process's peak memory above what it held once Odoo
was loaded. Baseline, same run: the naive export, all rows fetched into a list and
written by xlsxwriter in its default in-memory mode.
"""

import argparse
import io
import json
import os
import subprocess
import sys
import time

from benchlib import ROOT, OdooServer, ensure_database, fresh_copy, machine, parser, print_table, sql


def rss_mb(field):
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def measure(db, invoice_id, mode):
    """Run in a child process: export once, print JSON figures."""
    import xlsxwriter

    import odoo
    from odoo import SUPERUSER_ID, api

    odoo.tools.config.parse_config(["-c", os.path.join(ROOT, "odoo.conf"), "-d", db, "--log-level=warn"])
    registry = odoo.modules.registry.Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        move = env["account.move"].browse(invoice_id)
        move.iot_schedule_count  # noqa: B018 - load what the export reads before the baseline
        before = rss_mb("VmRSS")
        began = time.monotonic()
        if mode == "naive":
            from odoo.addons.iot_invoice_grouping.tools import COLUMNS, iter_detail_rows

            rows = list(iter_detail_rows(cr, invoice_id, "en_US"))
            output = io.BytesIO()
            workbook = xlsxwriter.Workbook(output)
            sheet = workbook.add_worksheet()
            for index, row in enumerate([[column.label for column in COLUMNS]] + rows):
                sheet.write_row(index, 0, [float(v) if hasattr(v, "as_tuple") else v for v in row])
            workbook.close()
            size, count = len(output.getvalue()), len(rows)
        else:
            # What the download route does: rows from a server-side cursor, written to a file.
            _name, _mime, path = move._iot_detail_to_path(mode)
            size, count = os.path.getsize(path), None
            os.unlink(path)
        elapsed = time.monotonic() - began
        print(json.dumps({"seconds": elapsed, "bytes": size, "rows": count,
                          "rss_before_mb": before, "peak_mb": rss_mb("VmHWM")}))


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--devices", type=int, default=50000)
    args.add_argument("--measure", nargs=3, metavar=("DB", "INVOICE", "MODE"), help=argparse.SUPPRESS)
    args = args.parse_args()
    if args.measure:
        measure(args.measure[0], int(args.measure[1]), args.measure[2])
        return
    from billing import bill, setup_fleet

    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    db = fresh_copy(args.db, args.db + "_export")
    with OdooServer(db) as server:
        client = server.client()
        setup_fleet(client, "X", args.devices, 1, "plan_period")
        _elapsed, invoices, _lines = bill(client, db)
    rows_expected = sql(db, "SELECT count(*) FROM iot_invoicing_schedule WHERE invoice_id = %s", (invoices[0],))[0][0]
    results = []
    for mode in ("csv", "xlsx", "naive"):
        out = subprocess.run([sys.executable, __file__, "--measure", db, str(invoices[0]), mode],
                             cwd=ROOT, check=True, capture_output=True, text=True).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        results.append([mode, "%.1f" % figures["seconds"], "%.1f" % (figures["bytes"] / 1e6),
                        "%.0f" % figures["rss_before_mb"], "%.0f" % figures["peak_mb"],
                        "%.0f" % (figures["peak_mb"] - figures["rss_before_mb"])])
        print("  %s: %s" % (mode, figures), flush=True)
    print_table("Detail export of one invoice: %d devices, about %d rows" % (args.devices, 2 * rows_expected),
                ["format", "seconds", "MB", "RSS before MB", "peak RSS MB", "peak - before MB"], results)


if __name__ == "__main__":
    main()
