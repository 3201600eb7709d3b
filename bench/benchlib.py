"""What the benchmarks share: their own database, a real Odoo server, a JSON-RPC client.

Benchmarks are scripts, not tests: they print figures and the ratio to a baseline
measured in the same run. Each uses the database ``bench_iot`` (four modules,
no demo data), created on first use; ``--reset`` recreates it.
"""

import argparse
import os
import platform
import socket
import subprocess
import sys
import threading
import time

import psycopg2
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = (
    "iot_device,iot_contract,iot_usage,iot_invoice_grouping,iot_dunning,iot_revenue_share,iot_invoice_threshold"
    ",iot_organization"
)
DEFAULT_DB = "bench_iot"


def parser(description):
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--db", default=DEFAULT_DB, help="benchmark database (created if missing)")
    args.add_argument("--reset", action="store_true", help="drop and recreate the database first")
    return args


def machine():
    cores = os.cpu_count()
    with open("/proc/meminfo", encoding="ascii") as handle:
        memory_kb = int(handle.readline().split()[1])
    return "%s, %d cores, %.0f GiB, Python %s" % (
        platform.machine(), cores, memory_kb / 1024 / 1024, platform.python_version())


def connect(db):
    connection = psycopg2.connect(host="127.0.0.1", user="root", dbname=db)  # the role odoo.conf uses
    connection.autocommit = True
    return connection


def sql(db, query, params=()):
    connection = connect(db)  # no "with": psycopg2 would open a transaction block
    try:
        with connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else cursor.rowcount
    finally:
        connection.close()


def ensure_database(db, reset=False):
    if reset:
        subprocess.run([sys.executable, "bin/devtool.py", "dropdb", db], cwd=ROOT, check=True)
    exists = subprocess.run([sys.executable, "bin/devtool.py", "dbexists", db], cwd=ROOT).returncode == 0
    if not exists:
        print("creating %s (modules, no demo data) ..." % db, flush=True)
        subprocess.run(
            [sys.executable, "-m", "odoo", "-c", "odoo.conf", "-d", db, "-i", MODULES,
             "--without-demo=all", "--stop-after-init", "--log-level=warn"],
            cwd=ROOT, check=True,
        )


def install(tree, db):
    """A new database ``db`` with the modules of the checkout ``tree`` (this one or another)."""
    subprocess.run([sys.executable, "bin/devtool.py", "dropdb", db], cwd=ROOT, check=True)
    subprocess.run(
        [sys.executable, "-m", "odoo", "-c", "odoo.conf", "-d", db, "-i", MODULES, "--without-demo=all",
         "--stop-after-init", "--log-level=warn"],
        cwd=tree, check=True,
    )


def send_batches(server, batches, clients, model="iot.usage", method="api_ingest"):
    """Send ``batches`` through ``clients`` concurrent RPC clients; returns (answers, seconds)."""
    answers = []
    lock = threading.Lock()

    def worker(mine):
        client = server.client()
        for batch in mine:
            answer = client(model, method, batch)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=worker, args=(batches[i::clients],)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, time.monotonic() - started


def fresh_copy(template, name):
    """A new database cloned from the installed template: every scenario starts from the same state."""
    subprocess.run([sys.executable, "bin/devtool.py", "dropdb", name], cwd=ROOT, check=True)
    sql("postgres", 'CREATE DATABASE "%s" TEMPLATE "%s"' % (name, template))
    return name


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class OdooServer:
    """``python3 -m odoo`` on a free port with Odoo's default limits (``limit_time_real`` 120 s,
    ``limit_time_cpu`` 60 s); ``workers`` > 0 for prefork (several processes), ``cron_workers``
    cron threads or processes (the billing run's chunk workers). ``port``: the HTTP port (the
    gevent port is the next one), a free one by default."""

    def __init__(self, db, workers=2, log_path="/tmp/bench-odoo.log", cron_workers=2, root=ROOT, port=None):
        self.db, self.workers, self.port, self.root = db, workers, port or free_port(), root
        self.gevent_port = port + 1 if port else None
        self.cron_workers = cron_workers
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = log_path
        self.process = None

    def __enter__(self):
        launcher = os.path.join(ROOT, "bench", "odoo_launcher.py")
        command = [sys.executable, launcher, "-c", "odoo.conf", "-d", self.db, "--db-filter=^%s$" % self.db,
                   "--http-port=%d" % self.port, "--max-cron-threads=%d" % self.cron_workers,
                   "--workers=%d" % self.workers, "--log-level=warn", "--logfile=%s" % self.log_path]
        if self.workers:
            command.append("--gevent-port=%d" % (self.gevent_port or free_port()))
        self.process = subprocess.Popen(command, cwd=self.root)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.post(self.url + "/web/webclient/version_info", json={}, timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError("Odoo did not start; see %s" % self.log_path)

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def client(self, login="admin", password="admin"):
        return RpcClient(self.url, self.db, login, password)


class RpcClient:
    """JSON-RPC ``execute_kw`` over one keep-alive HTTP session, as a platform would call."""

    def __init__(self, url, db, login, password):
        self.url, self.db, self.password = url + "/jsonrpc", db, password
        self.session = requests.Session()
        self.uid = self._call("common", "authenticate", db, login, password, {})
        if not self.uid:
            raise RuntimeError("cannot log in as %s" % login)

    def _call(self, service, method, *args):
        body = {"jsonrpc": "2.0", "method": "call", "id": 1,
                "params": {"service": service, "method": method, "args": list(args)}}
        answer = self.session.post(self.url, json=body, timeout=3600).json()
        if answer.get("error"):
            raise RuntimeError(answer["error"]["data"]["message"])
        return answer.get("result")  # Odoo leaves "result" out for None

    def __call__(self, model, method, *args, **kwargs):
        return self._call("object", "execute_kw", self.db, self.uid, self.password, model, method,
                          list(args), kwargs)


def print_table(title, header, rows):
    print("\n" + title)
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in [header] + rows:
        print("  ".join(str(cell).rjust(width) for cell, width in zip(row, widths, strict=True)))
    sys.stdout.flush()
