#!/usr/bin/env python3
"""Keep the floor: a billing run of N one-device contracts against Odoo's own batch create + post.

    python3 bench/billing_floor.py [--sizes 1000,10000] [--chunk-contracts 50] [--baseline-invoices 0]

For each size N, a template database is set up once (in process, through the API methods):
N contracts of one device each on a monthly plan with a fee (12-month plan, 9.99 a month, plus
energy per kWh: the scenario ``bench/billing.py --spread-devices`` bills), one reading per
device in April. Then, on a fresh copy, with Odoo running as a deployment runs it (prefork,
2 HTTP workers, 2 cron workers, Odoo's default limits):
  - the run: ``iot.billing.run.api_run`` for April over JSON-RPC, billed by the chunk crons,
    polled until done (N invoices, about two lines each);
  - the baseline, in the same database right after: the same invoices (partner, journal, date,
    product lines with their quantities, prices and taxes, read back from the run's invoices)
    created from plain values and posted in Odoo batches of the chunk's size
    (``account.move.create([...])`` then ``action_post()`` over JSON-RPC), by as many concurrent
    clients as there are chunk crons, so both use the same processes and the same parallelism.
Printed: wall clock per invoice of both and their ratio; the CPU of Odoo's processes and of the
database's PostgreSQL backends per invoice; from the chunk rows (``iot.billing.run.chunk``),
the run's phases: from ``api_run`` to the first chunk (preparation, waking the crons), the chunks
(their busy time per worker and per invoice), the chunk workers' idle time while work was left
and the longest time no chunk ran, and from the last chunk to the client seeing the run done;
with ``pg_stat_statements`` loaded in PostgreSQL, the statements that cost most in each.
"""

import collections
import datetime
import os
import subprocess
import sys
import threading
import time

from benchlib import ROOT, OdooServer, ensure_database, fresh_copy, machine, parser, print_table, sql
from billing import bill
from billing_hosts import chunk_figures, cpu_times, process_cpu

PLAN = "FLOOR-PLAN"
SETUP_BATCH = 5000
CHUNK_CRONS = 2  # shipped chunk crons, one per cron worker
TOP_STATEMENTS = 12


# ----------------------------------------------------------------------
# Template: N one-device contracts, set up once per size, in process
# ----------------------------------------------------------------------
def template(args, contracts):
    name = "%s_tpl%d" % (args.db, contracts)
    if not args.reset and sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (name,)):
        return name
    partial = fresh_copy(args.db, name + "_partial")  # renamed once complete: never reused half made
    print("setting up %d one-device contracts in %s ..." % (contracts, name), flush=True)
    began = time.monotonic()
    # A process of its own: its connections are closed when it ends, so the template can be copied.
    subprocess.run([sys.executable, os.path.abspath(__file__), "--setup", partial, str(contracts)], cwd=ROOT,
                   check=True)
    subprocess.run([sys.executable, "bin/devtool.py", "dropdb", name], cwd=ROOT, check=True)
    sql("postgres", 'ALTER DATABASE "%s" RENAME TO "%s"' % (partial, name))
    print("  set up in %.0f s" % (time.monotonic() - began), flush=True)
    return name


def setup(db, contracts):
    import odoo
    from odoo import SUPERUSER_ID, api

    odoo.tools.config.parse_config(["-c", os.path.join(ROOT, "odoo.conf"), "-d", db, "--log-level=warn"])
    registry = odoo.modules.registry.Registry(db)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        plan = env["product.product"].create({
            "name": "Connected Device Monthly", "default_code": PLAN, "type": "service", "list_price": 9.99,
            "iot_is_plan": True, "iot_duration_months": 12})
        env["iot.usage.calculator"].create({
            "name": "Energy", "product_tmpl_id": plan.product_tmpl_id.id,
            "metric_id": env["iot.usage.metric"].search([("code", "=", "kwh")]).id,
            "pricing": "per_unit", "unit_price": 0.00005})
        cr.commit()
        quiet = {"tracking_disable": True, "mail_create_nolog": True}
        for start in range(0, contracts, SETUP_BATCH):
            numbers = range(start, min(start + SETUP_BATCH, contracts))
            partners = env["res.partner"].with_context(**quiet).create(
                [{"name": "Customer F%06d" % n} for n in numbers])
            env["iot.contract"].create([
                {"name": "F%06d" % n, "reference": "F%06d" % n, "invoice_grouping": "plan_period",
                 "partner_id": partner.id} for n, partner in zip(numbers, partners, strict=True)]).action_start()
            Device = env["iot_billing.device"]
            Device.api_register([{"identifier": "F-%06d" % n} for n in numbers])
            errors = [entry for entry in Device.api_activate([
                {"identifier": "F-%06d" % n, "contract": "F%06d" % n, "plan": PLAN, "date_start": "2022-04-01"}
                for n in numbers]) if "error" in entry]
            assert not errors, errors[:3]
            env["iot.usage"].api_ingest([
                {"identifier": "F-%06d" % n, "metric": "kwh", "quantity": "%d.125" % (n % 997),
                 "timestamp": "2022-04-15T12:00:00Z", "message_id": "F-r%d" % n} for n in numbers])
            cr.commit()
            env.invalidate_all()
            print("  %d contracts" % (numbers[-1] + 1), flush=True)


# ----------------------------------------------------------------------
# Measuring
# ----------------------------------------------------------------------
def descendants(pid):
    """``pid`` and every process below it (prefork workers, the gevent process)."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    children[int(handle.read().rsplit(")", 1)[1].split()[1])].append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                continue
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


class Meter:
    """CPU seconds of the Odoo server's processes and of the database's PostgreSQL backends, and the
    machine's busy share, between ``start()`` and ``stop()``."""

    def __init__(self, db, server):
        self.db, self.server = db, server

    def _read(self):
        backends = [pid for (pid,) in sql("postgres", "SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                           (self.db,))]
        return {"odoo": {pid: process_cpu([pid]) for pid in descendants(self.server.process.pid)},
                "backends": {pid: process_cpu([pid]) for pid in backends}, "machine": cpu_times()}

    def start(self):
        self.before = self._read()

    def stop(self):
        after = self._read()

        def spent(kind):
            return sum(seconds - self.before[kind].get(pid, 0.0) for pid, seconds in after[kind].items())

        busy = (after["machine"][0] - self.before["machine"][0]) / (after["machine"][1] - self.before["machine"][1])
        return {"odoo_cpu": spent("odoo"), "postgres_cpu": spent("backends"), "machine": busy}


def statements_loaded():
    return "pg_stat_statements" in sql("postgres", "SHOW shared_preload_libraries")[0][0]


class Statements:
    """What ``pg_stat_statements`` saw of the database between ``reset()`` and ``top()``."""

    def __init__(self, db):
        self.db = db
        sql(db, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def reset(self):
        sql(self.db, "SELECT pg_stat_statements_reset()")

    def top(self):
        return sql(self.db, """
            SELECT s.total_exec_time / 1000, s.calls, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 110)
              FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
             WHERE d.datname = %s ORDER BY s.total_exec_time DESC LIMIT %s""", (self.db, TOP_STATEMENTS))


def baseline_values(db, invoice_ids):
    """The run's invoices as plain values: what a script would hand Odoo to make them."""
    moves = sql(db, """
        SELECT id, partner_id, journal_id, invoice_date, currency_id, fiscal_position_id, invoice_payment_term_id,
               invoice_origin, ref
          FROM account_move WHERE id = ANY(%s) ORDER BY id""", (invoice_ids,))
    lines = collections.defaultdict(list)
    for move_id, product_id, name, quantity, price_unit, tax_ids in sql(db, """
            SELECT l.move_id, l.product_id, l.name, l.quantity, l.price_unit,
                   array_remove(array_agg(rel.account_tax_id), NULL)
              FROM account_move_line l
              LEFT JOIN account_move_line_account_tax_rel rel ON rel.account_move_line_id = l.id
             WHERE l.move_id = ANY(%s) AND l.display_type = 'product'
             GROUP BY l.id ORDER BY l.id""", (invoice_ids,)):
        # JSON has no decimals: floats, which Odoo rounds to the fields' digits as for any client.
        lines[move_id].append({"product_id": product_id, "name": name, "quantity": float(quantity),
                               "price_unit": float(price_unit), "tax_ids": [(6, 0, tax_ids)]})
    return [{"move_type": "out_invoice", "partner_id": partner, "journal_id": journal,
             "invoice_date": date.isoformat(), "currency_id": currency, "fiscal_position_id": position or False,
             "invoice_payment_term_id": term or False, "invoice_origin": origin, "ref": ref,
             "invoice_line_ids": [(0, 0, line) for line in lines[move_id]]}
            for move_id, partner, journal, date, currency, position, term, origin, ref in moves]


def run_baseline(server, values, batch_size, clients):
    """Create and post ``values`` in batches of ``batch_size`` from ``clients`` concurrent clients;
    returns (invoice ids, seconds)."""
    batches = [values[start:start + batch_size] for start in range(0, len(values), batch_size)]
    created, failures, lock = [], [], threading.Lock()

    def work(mine):
        client = server.client()
        try:
            for batch in mine:
                ids = client("account.move", "create", batch)
                client("account.move", "action_post", ids)
                with lock:
                    created.extend(ids)
        except Exception as error:  # noqa: BLE001 - raised again in the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=(batches[i::clients],)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return created, time.monotonic() - began


def total(db, invoice_ids):
    return sql(db, "SELECT count(*) FILTER (WHERE state = 'posted'), sum(amount_total) FROM account_move "
                   "WHERE id = ANY(%s)", (invoice_ids,))[0]


def scenario(args, contracts):
    source = template(args, contracts)
    db = fresh_copy(source, "%s_run" % args.db)
    statements = Statements(db) if args.statements else None
    with OdooServer(db, workers=2, cron_workers=CHUNK_CRONS, root=args.tree,
                    log_path="/tmp/%s-odoo.log" % args.db) as server:
        client = server.client()
        if args.chunk_contracts:
            client("ir.config_parameter", "set_param", "iot_contract.billing_chunk_contracts",
                   str(args.chunk_contracts))
        chunk_size = int(client("ir.config_parameter", "get_param", "iot_contract.billing_chunk_contracts") or 50)
        meter = Meter(db, server)
        if statements:
            statements.reset()
        meter.start()
        began = time.time()
        elapsed, invoices, lines = bill(client, db)
        run_cost = meter.stop()
        run_statements = statements.top() if statements else []
        run_id = sql(db, "SELECT max(id) FROM iot_billing_run")[0][0]
        chunks = chunk_figures(db, run_id, CHUNK_CRONS, began, began + elapsed)
        print("  %d contracts: run %.1f s, %d invoices, %d lines, %d chunks, busy %.1f s" % (
            contracts, elapsed, len(invoices), lines, chunks["chunks"], chunks["busy"]), flush=True)

        sample = invoices if not args.baseline_invoices else invoices[:args.baseline_invoices]
        values = baseline_values(db, sample)
        if statements:
            statements.reset()
        meter.start()
        baseline_ids, baseline = run_baseline(server, values, args.baseline_batch or chunk_size, CHUNK_CRONS)
        baseline_cost = meter.stop()
        baseline_statements = statements.top() if statements else []
    posted, amount = total(db, baseline_ids)
    run_posted, run_amount = total(db, sample)
    assert posted == len(sample) and amount == run_amount and run_posted == len(sample), (
        posted, amount, run_posted, run_amount)
    sql("postgres", 'DROP DATABASE "%s"' % db)
    figures = {
        "contracts": contracts, "invoices": len(invoices), "lines": lines, "chunk_size": chunk_size,
        "run": elapsed, "run_per_invoice": elapsed / len(invoices), "baseline_invoices": len(sample),
        "baseline": baseline, "baseline_per_invoice": baseline / len(sample),
        "run_cost": run_cost, "baseline_cost": baseline_cost, "chunks": chunks,
        "run_statements": run_statements, "baseline_statements": baseline_statements,
    }
    figures["ratio"] = figures["run_per_invoice"] / figures["baseline_per_invoice"]
    print("  %d contracts: run %.1f s (%.1f ms/invoice), baseline %d invoices %.1f s (%.1f ms/invoice), "
          "ratio %.2f" % (contracts, elapsed, 1000 * figures["run_per_invoice"], len(sample), baseline,
                          1000 * figures["baseline_per_invoice"], figures["ratio"]), flush=True)
    return figures


def ms(seconds, count):
    return "%.1f" % (1000 * seconds / count)


def main():
    if sys.argv[1:2] == ["--setup"]:
        setup(sys.argv[2], int(sys.argv[3]))
        return
    args = parser(__doc__.splitlines()[0])
    args.set_defaults(db="floor_bench")
    args.add_argument("--sizes", default="1000,10000", help="one-device contracts (invoices) per run")
    args.add_argument("--chunk-contracts", type=int, default=0,
                      help="contracts per chunk (system parameter); 0: the engine's own")
    args.add_argument("--baseline-batch", type=int, default=0, help="invoices per create; 0: the chunk's size")
    args.add_argument("--baseline-invoices", type=int, default=0, help="invoices the baseline makes; 0: all")
    args.add_argument("--tree", default=ROOT, help="the checkout whose add-ons Odoo runs (to measure a change)")
    args.add_argument("--templates-only", action="store_true",
                      help="set up the sizes' template databases and stop (no benchmark lock needed)")
    args = args.parse_args()
    args.statements = statements_loaded()
    ensure_database(args.db, args.reset)
    print("machine: %s; %s" % (machine(), datetime.datetime.now().isoformat(timespec="seconds")))
    print("pg_stat_statements: %s" % ("loaded" if args.statements else
                                      "not in shared_preload_libraries (the shared PostgreSQL is not restarted "
                                      "for it): no statement figures"))
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.templates_only:
        for size in sizes:
            template(args, size)
        return
    results = [scenario(args, size) for size in sizes]

    print_table("Run against baseline, wall clock per invoice (Odoo prefork, 2 HTTP + 2 cron workers, "
                "default limits)",
                ["contracts", "invoices", "lines", "chunk", "run s", "run ms/inv", "baseline inv", "baseline s",
                 "baseline ms/inv", "ratio", "run Odoo CPU ms/inv", "base Odoo CPU ms/inv", "run PG CPU ms/inv",
                 "base PG CPU ms/inv", "run machine CPU", "base machine CPU"],
                [[f["contracts"], f["invoices"], f["lines"], f["chunk_size"], "%.1f" % f["run"],
                  ms(f["run"], f["invoices"]), f["baseline_invoices"], "%.1f" % f["baseline"],
                  ms(f["baseline"], f["baseline_invoices"]), "%.2f" % f["ratio"],
                  ms(f["run_cost"]["odoo_cpu"], f["invoices"]),
                  ms(f["baseline_cost"]["odoo_cpu"], f["baseline_invoices"]),
                  ms(f["run_cost"]["postgres_cpu"], f["invoices"]),
                  ms(f["baseline_cost"]["postgres_cpu"], f["baseline_invoices"]),
                  "%.0f %%" % (100 * f["run_cost"]["machine"]), "%.0f %%" % (100 * f["baseline_cost"]["machine"])]
                 for f in results])
    rows = []
    for f in results:
        c = f["chunks"]
        per_worker = " / ".join("%d (%.0f s)" % (count, busy) for count, _contracts, busy in c["hosts"].values())
        rows.append([f["contracts"], c["chunks"], "%.1f" % c["before_first"],
                     "%.1f" % (f["run"] - c["before_first"] - c["after_last"]), "%.1f" % c["after_last"],
                     "%.1f" % c["busy"], ms(c["busy"], f["invoices"]), c["workers"], per_worker,
                     "%.1f" % c["idle_slots"], "%.2f" % c["longest_gap"]])
    print_table("Phases of the run (chunk rows): api_run -> first chunk (prepare, wake the crons), chunks, "
                "last chunk -> done seen",
                ["contracts", "chunks", "to first chunk s", "chunks s", "after last chunk s", "busy s",
                 "busy ms/inv", "workers", "chunks (busy s) per host", "workers idle s", "longest no-chunk gap s"],
                rows)
    if len(results) > 1:
        small, large = results[0], results[-1]
        growth = large["invoices"] / small["invoices"]
        print_table("Linearity (1.0 = linear; target <= 1.1)", ["step", "run time ratio / size ratio"],
                    [["%d -> %d" % (small["contracts"], large["contracts"]),
                      "%.2f" % (large["run"] / small["run"] / growth)]])
    for f in results:
        for kind in ("run", "baseline"):
            if f[kind + "_statements"]:
                print_table("pg_stat_statements, %s of %d contracts" % (kind, f["contracts"]),
                            ["total s", "calls", "statement"],
                            [["%.2f" % seconds, calls, query] for seconds, calls, query in f[kind + "_statements"]])


if __name__ == "__main__":
    main()
