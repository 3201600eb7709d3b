#!/usr/bin/env python3
"""One billing run of N one-device contracts on one host against two hosts, and what it waits for.

    python3 bench/billing_hosts.py [--contracts 1000] [--rounds 2] [--layouts one,two,two-4crons]

Each host is a network namespace of its own (tests/netns_hosts.py) running Odoo as a deployment
runs it: prefork, 2 HTTP workers, 2 cron workers (``max_cron_threads``), Odoo's default limits,
PostgreSQL (the one of this machine) through its unix socket. Layouts:
  one         one host: its 2 cron workers hold the 2 shipped chunk crons;
  two         two hosts (4 cron workers), the 2 shipped chunk crons: Odoo runs a cron on one
              worker at a time, so at most 2 chunks at once, wherever;
  two-4crons  two hosts and 4 chunk crons (the shipped two and a copy of each): 4 chunks at once.
Every scenario bills the same April run of a fresh copy of one template (N contracts of one device,
one reading each, set up once over RPC), started by ``api_run`` on the first host; the layouts
alternate, each round in another order, so that each meets the same machine. Measured per scenario:
invoices/s; the CPU seconds of the hosts' Odoo processes and of the database's PostgreSQL backends
(so what the cores would allow: cores / CPU per invoice); from the chunk rows, each host's chunks
and busy time, the chunk workers' time not billing while the run was under way and the longest
time no chunk ran; sampling ``pg_stat_activity``/``pg_locks`` every 50 ms, the backends running a
query, the connections, and the backends waiting on a lock, by lock (the contract claim, the
invoice number, the company's billing lock, the cron job rows, ...).
"""

import collections
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time

from benchlib import ROOT, OdooServer, RpcClient, connect, ensure_database, fresh_copy, machine, parser, print_table
from billing import bill, setup_fleet

sys.path.insert(0, os.path.join(ROOT, "tests"))
from netns_hosts import HostedOdoo, NamespaceHost, namespaces_problem  # noqa: E402 - the tests' hosts

LAUNCHER = (sys.executable, os.path.join(ROOT, "bench", "odoo_launcher.py"))  # prefork re-executes its script
LAYOUTS = {"one": (1, 0), "two": (2, 0), "two-4crons": (2, 2)}  # hosts, chunk crons added to the shipped two
SAMPLE_SECONDS = 0.05
GAP_WORTH_A_LOOK = 2  # seconds without any chunk running: the hosts' logs (cron jobs at info) are kept
CHUNK_CRONS = ("iot_billing_run_chunk_cron", "iot_billing_run_chunk_cron_2")  # shipped


def template(args):
    """The database every scenario copies: the contracts set up and nothing billed."""
    name = "%s_tpl%d" % (args.db, args.contracts)
    if _exists(name) and not args.reset:
        return name
    fresh_copy(args.db, name)
    print("setting up %d one-device contracts in %s ..." % (args.contracts, name), flush=True)
    with OdooServer(name, workers=2, cron_workers=0) as server:
        setup_fleet(server.client(), "H", args.contracts, args.contracts, "plan_period")
    return name


def _exists(db):
    return bool(_sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", (db,)))


def _sql(db, query, params=()):
    connection = connect(db)
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def add_chunk_crons(client, count):
    """``count`` more chunk crons, copies of the shipped ones, as an operator adds them for more
    cron workers (the engine finds and wakes every cron running the chunk code)."""
    shipped = client("ir.cron", "search", [("code", "=", "model._cron_process_runs()")], order="id")
    for number in range(count):
        client("ir.cron", "copy", [shipped[number % len(shipped)]],
               {"name": "IoT: billing run chunks (copy %d)" % (number + 1), "active": True})


class LockSampler(threading.Thread):
    """Every SAMPLE_SECONDS: the database's backends that run a query, and those waiting on a
    lock, by what they wait for."""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db, self.stopping = db, threading.Event()
        self.samples = 0
        self.running = 0  # backends with state 'active' over all samples
        self.connections = 0  # most connections to the database at once
        self.waits = collections.Counter()  # lock -> samples
        self.examples = {}

    def run(self):
        connection = connect(self.db)
        with connection.cursor() as cursor:
            while not self.stopping.is_set():
                cursor.execute("""
                    SELECT a.state, a.wait_event_type, l.locktype, l.relation::regclass::text, l.classid, l.mode,
                           left(regexp_replace(a.query, '\\s+', ' ', 'g'), 300)
                      FROM pg_stat_activity a
                      LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
                     WHERE a.datname = %s AND a.pid != pg_backend_pid()""", (self.db,))
                self.samples += 1
                backends = cursor.fetchall()
                self.connections = max(self.connections, len(backends))
                for state, wait_type, locktype, relation, classid, mode, query in backends:
                    if state != "active":  # idle, or idle in a transaction: Odoo's turn
                        continue
                    self.running += 1
                    if wait_type == "Lock":
                        lock = _lock_name(locktype, relation, classid, query)
                        self.waits[lock] += 1
                        self.examples.setdefault(lock, "%s %s: %s" % (locktype, mode, query))
                time.sleep(SAMPLE_SECONDS)
        connection.close()

    def stop(self):
        self.stopping.set()
        self.join()


def _lock_name(locktype, relation, classid, query):
    """What a waiting backend waits for, in the words of the engine."""
    if locktype == "advisory":
        return "company's billing lock (advisory %s)" % classid if classid == 70140 else "advisory %s" % classid
    text = (query or "").lower()
    if "ir_sequence" in text or relation == "ir_sequence":
        return "ir_sequence row"
    if "account_move" in text and ("name" in text or "sequence" in text):
        return "invoice number (account_move name)"
    if "iot_contract" in text and " for " in text:
        return "contract claim"
    if "ir_cron" in text:
        return "cron job rows"
    table = re.search(r'(?:update|into|from)\s+"?(\w+)', text)
    return "%s on %s" % (locktype, relation or (table.group(1) if table else "?"))


def cpu_times():
    """(busy, total) clock ticks of the whole machine."""
    with open("/proc/stat") as handle:
        values = [int(value) for value in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def process_cpu(pids, with_children=False):
    """CPU seconds (user + system) of these processes; ``with_children``: and of their ended children."""
    ticks = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if with_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by the hosts' Odoo processes and by the database's PostgreSQL backends."""

    def __init__(self, db, servers):
        self.db, self.servers = db, servers

    def read(self):
        main_pids = [server.process.pid for server in self.servers]
        children = [pid for server in self.servers for pid in server.host.pids() if pid not in main_pids]
        backends = [pid for (pid,) in _sql("postgres", "SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                            (self.db,))]
        return {"odoo": process_cpu(main_pids, with_children=True) + process_cpu(children),
                "backends": {pid: process_cpu([pid]) for pid in backends}}

    @staticmethod
    def spent(before, after):
        """(Odoo s, PostgreSQL s) between two readings (backends gone meanwhile are not counted)."""
        postgres = sum(seconds - before["backends"].get(pid, 0.0) for pid, seconds in after["backends"].items())
        return after["odoo"] - before["odoo"], postgres


def chunk_figures(db, run_id, slots, began, ended):
    """From the run's chunk rows: per host (chunks, contracts, busy s); the time ``slots`` chunk
    workers (chunk crons that have a cron worker) spent not billing while the run was under way
    and the longest time no chunk ran at all; from ``api_run`` to the first chunk and from the
    last chunk to the client seeing the run done (``began``, ``ended``: epoch seconds)."""
    rows = _sql(db, """
        SELECT worker, contract_count, duration::float, extract(epoch FROM create_date)::float
          FROM iot_billing_run_chunk WHERE run_id = %s ORDER BY create_date""", (run_id,))
    hosts = collections.defaultdict(lambda: [0, 0, 0.0])
    # create_date is the chunk transaction's now(): when the chunk started.
    chunks = [(started, started + duration) for _w, _c, duration, started in rows]
    for worker, contracts, duration, _started in rows:
        host = hosts[worker.split(":")[0]]
        host[0] += 1
        host[1] += contracts
        host[2] += duration
    first, last = min(start for start, _end in chunks), max(end for _start, end in chunks)
    busy = sum(duration for _w, _c, duration, _s in rows)
    covered_until, longest_gap = first, 0.0
    for start, end in chunks:
        longest_gap = max(longest_gap, start - covered_until)
        covered_until = max(covered_until, end)
    return {
        "chunks": len(rows), "hosts": dict(hosts), "workers": len({worker for worker, *_rest in rows}),
        "busy": busy, "idle_slots": slots * (last - first) - busy, "longest_gap": longest_gap,
        "before_first": first - began, "after_last": ended - last,
    }


def scenario(args, source, layout, round_number):
    host_count, extra_crons = LAYOUTS[layout]
    db = fresh_copy(source, "%s_%s_%d" % (args.db, layout.replace("-", "_"), round_number))
    hosts = [NamespaceHost(label) for label in "ab"[:host_count]]
    workdir = tempfile.mkdtemp(prefix="bench-hosts-")  # the hosts' configuration and logs
    servers = [HostedOdoo(host, db, workdir, workers=2, cron_threads=2, program=LAUNCHER, log_level="info")
               for host in hosts]
    try:
        for host in hosts:
            host.create()
        for server in servers:
            server.start()
        client = RpcClient(servers[0].url, db, "admin", "admin")
        add_chunk_crons(client, extra_crons)
        sampler, meter = LockSampler(db), CpuMeter(db, servers)
        machine_before, cpu_before = cpu_times(), meter.read()
        sampler.start()
        began = time.time()
        try:
            elapsed, invoices, lines = bill(client, db)
        finally:
            sampler.stop()
        machine_after, cpu_after = cpu_times(), meter.read()
    finally:
        for server in servers:
            server.stop()
        for host in hosts:
            host.destroy()
    run_id = _sql(db, "SELECT max(id) FROM iot_billing_run")[0][0]
    slots = min(len(CHUNK_CRONS) + extra_crons, 2 * host_count)  # each chunk cron on one of the cron workers
    figures = chunk_figures(db, run_id, slots, began, began + elapsed)
    odoo_cpu, postgres_cpu = CpuMeter.spent(cpu_before, cpu_after)
    figures.update({
        "layout": layout, "round": round_number, "elapsed": elapsed, "invoices": len(invoices), "lines": lines,
        "rate": len(invoices) / elapsed, "odoo_cpu": odoo_cpu, "postgres_cpu": postgres_cpu,
        "machine_cpu": (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1]),
        "running": sampler.running / sampler.samples, "waits": sampler.waits, "examples": sampler.examples,
        "lock_wait_seconds": sum(sampler.waits.values()) * SAMPLE_SECONDS, "connections": sampler.connections,
    })
    if not args.keep:
        _sql("postgres", 'DROP DATABASE "%s"' % db)
    if figures["longest_gap"] < GAP_WORTH_A_LOOK:
        shutil.rmtree(workdir)
    cpu = odoo_cpu + postgres_cpu
    figures["cpu_share"] = cpu / (elapsed * os.cpu_count())  # of the machine's cores
    figures["ceiling"] = len(invoices) * os.cpu_count() / cpu  # invoices/s if the cores were all ours
    print("  %s round %d: %.1f s, %.1f invoices/s, chunks per host %s, CPU Odoo %.0f s PostgreSQL %.0f s, "
          "machine %.0f %%, lock waits %.1f s %s%s" % (
              layout, round_number, elapsed, figures["rate"],
              {host: count for host, (count, _c, _b) in figures["hosts"].items()}, odoo_cpu, postgres_cpu,
              100 * figures["machine_cpu"], figures["lock_wait_seconds"], dict(sampler.waits),
              "" if figures["longest_gap"] < GAP_WORTH_A_LOOK else "; a gap of %.0f s: logs in %s" % (
                  figures["longest_gap"], workdir)), flush=True)
    return figures


def main():
    args = parser(__doc__.splitlines()[0])
    args.set_defaults(db="hosts_bench")
    args.add_argument("--contracts", type=int, default=1000, help="one-device contracts (invoices)")
    args.add_argument("--rounds", type=int, default=2)
    args.add_argument("--layouts", default="one,two,two-4crons")
    args.add_argument("--keep", action="store_true", help="keep each scenario's database")
    args = args.parse_args()
    problem = namespaces_problem()
    if problem:
        sys.exit("hosts cannot be made here: %s" % problem)
    layouts = args.layouts.split(",")
    ensure_database(args.db)
    print("machine: %s" % machine())
    source = template(args)
    # Each round in another order: no layout always runs first, or after the same one.
    results = [scenario(args, source, layouts[(index + number) % len(layouts)], number + 1)
               for number in range(args.rounds) for index in range(len(layouts))]

    rows = []
    for f in results:
        per_host = " / ".join("%d (%.0f s)" % (count, busy) for count, _c, busy in f["hosts"].values())
        rows.append([f["layout"], f["round"], "%.1f" % f["elapsed"], "%.1f" % f["rate"], f["chunks"], per_host,
                     f["workers"], "%.0f" % (1000 * f["busy"] / f["invoices"]), "%.1f" % f["idle_slots"],
                     "%.1f" % f["longest_gap"], "%.1f" % f["before_first"], "%.1f" % f["after_last"],
                     "%.0f" % (1000 * f["odoo_cpu"] / f["invoices"]),
                     "%.0f" % (1000 * f["postgres_cpu"] / f["invoices"]),
                     "%.0f %%" % (100 * f["machine_cpu"]), "%.0f %%" % (100 * f["cpu_share"]),
                     "%.1f" % f["ceiling"], "%.2f" % f["running"], "%.1f" % f["lock_wait_seconds"],
                     f["connections"]])
    print_table("Billing %d one-device contracts (%d invoices), Odoo prefork 2 HTTP + 2 cron workers per host"
                % (args.contracts, results[0]["invoices"]),
                ["layout", "round", "bill s", "invoices/s", "chunks", "chunks (busy s) per host", "workers",
                 "busy ms/invoice", "workers idle s", "longest no-chunk gap s", "to first chunk s",
                 "after last chunk s", "Odoo CPU ms/invoice", "PostgreSQL CPU ms/invoice", "machine CPU",
                 "of it ours", "cores allow invoices/s", "backends running", "lock waits s",
                 "connections"], rows)
    waits = collections.defaultdict(collections.Counter)
    for figures in results:
        waits[figures["layout"]].update(figures["waits"])
    locks = sorted({lock for counter in waits.values() for lock in counter})
    print_table("Lock waits, seconds summed over the rounds (backends waiting x %.0f ms samples)"
                % (1000 * SAMPLE_SECONDS), ["lock"] + layouts,
                [[lock] + ["%.2f" % (waits[layout][lock] * SAMPLE_SECONDS) for layout in layouts] for lock in locks]
                or [["none"] + ["0"] * len(layouts)])
    for lock in locks:
        example = next(figures["examples"][lock] for figures in results if lock in figures["examples"])
        print("  %s, e.g. %s" % (lock, example))
    rates = {layout: statistics.median(f["rate"] for f in results if f["layout"] == layout) for layout in layouts}
    if "one" in rates:
        print_table("Throughput (median over the rounds) against one host",
                    ["layout", "invoices/s", "ratio to one host"],
                    [[layout, "%.1f" % rate, "%.2f" % (rate / rates["one"])] for layout, rate in rates.items()])


if __name__ == "__main__":
    main()
