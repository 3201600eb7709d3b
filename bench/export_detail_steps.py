#!/usr/bin/env python3
"""Detail written by the cron in committed steps (.csv.gz) for one invoice of N devices: time per step.

    python3 bench/export_detail_steps.py [--devices 100000] [--step-rows 100000]

Bills N devices (fixed fee + usage each, about 1.9 N detail rows) on a fresh copy of
the benchmark database, then, in a new process, marks the invoice's detail pending
and runs the steps the cron "IoT: invoice detail files" runs, each committed: the
time of every step, of the last one's concatenation into the attached file, and the
process's peak memory above what it held once Odoo was loaded. Baseline, same
process: the whole detail written at once as one CSV (what the download route
writes), whose bytes the decompressed file must equal.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import time

from benchlib import ROOT, OdooServer, ensure_database, fresh_copy, machine, parser, print_table


def rss_mb(field):
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def sha256(stream):
    digest = hashlib.sha256()
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()


def measure(db, invoice_id, step_rows):
    """Run in a child process: write the detail in steps, print JSON figures."""
    import odoo
    from odoo import SUPERUSER_ID, api

    odoo.tools.config.parse_config(["-c", os.path.join(ROOT, "odoo.conf"), "-d", db, "--log-level=warn"])
    registry = odoo.modules.registry.Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env["ir.config_parameter"].set_param("iot_invoice_grouping.detail_step_rows", step_rows)
        move = env["account.move"].browse(invoice_id)
        rows = move._iot_detail_row_counts()[invoice_id]
        move.write({"iot_detail_state": "pending", "iot_detail_row_count": rows})
        cr.commit()
        before = rss_mb("VmRSS")

        began = time.monotonic()
        _name, _mime, path = move._iot_detail_to_path("csv")
        baseline = time.monotonic() - began
        with open(path, "rb") as handle:
            expected = sha256(handle)
        csv_bytes = os.path.getsize(path)
        os.unlink(path)

        # The last step's concatenation, timed apart from its rows.
        model_class = type(move)
        attach = model_class._iot_detail_attach_parts
        timings = {}

        def timed_attach(self):
            started = time.monotonic()
            attach(self)
            timings["attach"] = time.monotonic() - started

        model_class._iot_detail_attach_parts = timed_attach
        steps = []
        while move.iot_detail_state == "pending":
            started = time.monotonic()
            written = move._iot_detail_step()
            cr.commit()
            steps.append((written, time.monotonic() - started))
            env.invalidate_all()
        content = move.iot_detail_attachment_id.raw
        print(json.dumps({
            "rows": rows, "steps": steps, "attach": timings["attach"], "gz_bytes": len(content),
            "identical": sha256(gzip.GzipFile(fileobj=io.BytesIO(content))) == expected, "csv_seconds": baseline,
            "csv_bytes": csv_bytes, "rss_before_mb": before, "peak_mb": rss_mb("VmHWM"),
        }))


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--devices", type=int, default=100000)
    args.add_argument("--step-rows", type=int, default=100000)
    args.add_argument("--measure", nargs=3, metavar=("DB", "INVOICE", "STEP_ROWS"), help=argparse.SUPPRESS)
    args = args.parse_args()
    if args.measure:
        measure(args.measure[0], int(args.measure[1]), int(args.measure[2]))
        return
    from billing import bill, setup_fleet

    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    db = fresh_copy(args.db, args.db + "_steps")
    with OdooServer(db) as server:
        client = server.client()
        setup_fleet(client, "X", args.devices, 1, "plan_period")
        _elapsed, invoices, _lines = bill(client, db)
    out = subprocess.run([sys.executable, __file__, "--measure", db, str(invoices[0]), str(args.step_rows)],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    print("  %s" % figures, flush=True)
    table = [[number, written, "%.1f" % seconds, "%.0f" % (written / seconds if written else 0)]
             for number, (written, seconds) in enumerate(figures["steps"], 1)]
    print_table("Detail of one invoice written in steps of %d rows: %d devices, %d rows"
                % (args.step_rows, args.devices, figures["rows"]),
                ["step", "rows", "seconds", "rows/s"], table)
    print_table("Last step's concatenation, file, memory; baseline: the whole CSV at once",
                ["attach s", ".csv.gz MB", "CSV MB", "identical", "CSV at once s", "peak - before MB"],
                [["%.2f" % figures["attach"], "%.1f" % (figures["gz_bytes"] / 1e6),
                  "%.1f" % (figures["csv_bytes"] / 1e6), figures["identical"], "%.1f" % figures["csv_seconds"],
                  "%.0f" % (figures["peak_mb"] - figures["rss_before_mb"])]])


if __name__ == "__main__":
    main()
