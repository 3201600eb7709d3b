"""Real processes for the bridge's integration tests: a private Mosquitto started
with the project's docker/mosquitto.conf, a real Odoo server on the demo
database, the bridge and the simulator. Every process is stopped by its fixture.

The database is ``$IOT_SERVER_DB`` (set by bin/test: four modules + demo data),
else ``bridge_demo`` (created with the four modules on first use).
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import psycopg2
import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BRIDGE_PATH = os.path.join(ROOT, "bridge")
MODULES = (
    "iot_device,iot_contract,iot_usage,iot_invoice_grouping,iot_dunning,iot_revenue_share,iot_invoice_threshold"
    ",iot_organization"
)
BRIDGE_LOGIN, BRIDGE_KEY = "iot-bridge", "iot-bridge-demo"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, interval=0.2, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, message))


def _stop(process, timeout=20):
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Broker:
    """A private Mosquitto with the project's configuration on a free port."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.port = free_port()
        self.process = None
        data = os.path.join(workdir, "mosquitto-data")
        os.makedirs(data, exist_ok=True)
        os.chmod(workdir, 0o777)  # mosquitto drops root to its own user
        os.chmod(data, 0o777)
        with open(os.path.join(ROOT, "docker", "mosquitto.conf")) as handle:
            conf = handle.read()
        conf = re.sub(r"(?m)^listener 1883.*$", "listener %d 127.0.0.1" % self.port, conf)
        conf = re.sub(r"(?m)^persistence_location .*$", "persistence_location %s/" % data, conf)
        self.conf_path = os.path.join(workdir, "mosquitto.conf")
        with open(self.conf_path, "w") as handle:
            handle.write(conf)
        self.log_path = os.path.join(workdir, "mosquitto.log")

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(["mosquitto", "-c", self.conf_path], stdout=self.log, stderr=self.log)
        wait_until(self._listening, 10, message="mosquitto on port %d" % self.port)

    def _listening(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            assert self.process.poll() is None, open(self.log_path).read()[-2000:]
            return False

    def stop(self):
        _stop(self.process)
        self.log.close()


class OdooServer:
    """``python3 -m odoo`` serving one database on a free port (no cron thread unless asked)."""

    def __init__(self, db, workdir, cron_threads=0):
        self.db = db
        self.cron_threads = cron_threads
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(workdir, "odoo-%s.log" % db)
        self.process = None

    def start(self, timeout=180):
        command = [sys.executable, "-m", "odoo", "-c", "odoo.conf", "-d", self.db,
                   "--http-port=%d" % self.port, "--db-filter=^%s$" % self.db,
                   "--max-cron-threads=%d" % self.cron_threads, "--log-level=warn", "--logfile=%s" % self.log_path]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._ready, timeout, interval=0.5, message="Odoo on %s" % self.url)

    def _ready(self):
        assert self.process.poll() is None, "Odoo exited; see %s" % self.log_path
        try:
            response = requests.post(self.url + "/web/webclient/version_info", json={}, timeout=2)
            return response.status_code == 200
        except requests.RequestException:
            return False

    def stop(self):
        _stop(self.process, timeout=30)

    def kill(self):
        """SIGKILL, as a crash or the OOM killer: no cleanup of any kind."""
        self.process.kill()
        self.process.wait(10)

    def rpc(self, model, method, *args, login="admin", password="admin", **kwargs):
        def call(service, meth, *call_args):
            body = {"jsonrpc": "2.0", "method": "call", "id": 1,
                    "params": {"service": service, "method": meth, "args": list(call_args)}}
            answer = requests.post(self.url + "/jsonrpc", json=body, timeout=60).json()
            if answer.get("error"):
                raise AssertionError(json.dumps(answer["error"])[:2000])
            return answer.get("result")  # Odoo leaves "result" out for None

        uid = call("common", "login", self.db, login, password)
        return call("object", "execute_kw", self.db, uid, password, model, method, list(args), kwargs)


class BridgeProcess:
    """``python3 -m iot_bridge`` configured by environment variables only."""

    def __init__(self, workdir, broker, odoo, **overrides):
        self.log_path = os.path.join(workdir, "bridge-%s.log" % uuid.uuid4().hex[:6])
        self.env = dict(os.environ, PYTHONPATH=BRIDGE_PATH)
        settings = {
            "mqtt_host": "127.0.0.1", "mqtt_port": broker.port,
            "mqtt_client_id": "bridge-test-" + uuid.uuid4().hex[:8],
            "odoo_url": odoo.url, "odoo_db": odoo.db, "odoo_login": BRIDGE_LOGIN, "odoo_key": BRIDGE_KEY,
            "spool_dir": os.path.join(workdir, "spool-" + uuid.uuid4().hex[:6]),
            "batch_size": 500, "batch_max_delay": 0.5, "retry_initial": 0.5, "retry_max": 2,
            "stats_interval": 2, "log_level": "INFO",
        }
        settings.update(overrides)
        self.settings = settings
        for key, value in settings.items():
            self.env["IOT_BRIDGE_" + key.upper()] = str(value)
        self.process = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "iot_bridge"], env=self.env,
                                        stdout=self.log, stderr=self.log)
        wait_until(lambda: "subscribed to" in self.read_log(), 20, message="bridge subscribed")

    def stat(self, name):
        """The last value of one counter of the periodic stats line (-1 before the first line)."""
        values = re.findall(r" %s=(\d+)" % name, self.read_log())
        return int(values[-1]) if values else -1

    def read_log(self):
        assert self.process.poll() is None or self.process.returncode in (0, -9, -15), self._tail()
        with open(self.log_path, errors="replace") as handle:
            return handle.read()

    def _tail(self):
        with open(self.log_path, errors="replace") as handle:
            return "bridge exited %s:\n%s" % (self.process.returncode, handle.read()[-3000:])

    def stop(self):
        _stop(self.process)
        self.log.close()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.close()


def simulate(broker, *args, timeout=300):
    """Run the simulator; returns its JSON summary."""
    command = [sys.executable, "-m", "iot_bridge.simulator", "--port", str(broker.port), *map(str, args)]
    result = subprocess.run(command, env=dict(os.environ, PYTHONPATH=BRIDGE_PATH), capture_output=True,
                            text=True, timeout=timeout, check=True)
    return json.loads(result.stdout)


def simulate_async(broker, *args):
    command = [sys.executable, "-m", "iot_bridge.simulator", "--port", str(broker.port), *map(str, args)]
    return subprocess.Popen(command, env=dict(os.environ, PYTHONPATH=BRIDGE_PATH),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def sql(db, query, params=()):
    connection = psycopg2.connect(host=os.environ.get("PGHOST", "127.0.0.1"),
                                  port=int(os.environ.get("PGPORT", "5432")),
                                  user=os.environ.get("PGUSER", "root"), dbname=db)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(query, params)
            return cursor.fetchall() if cursor.description else None
    finally:
        connection.close()


def usage_counts(db, identifier_prefix):
    """(stored readings, distinct message ids, quantity sum as str, rejected entries) of a run's
    devices; refused input is kept in iot_usage_reject."""
    rows = sql(db, """
        SELECT count(*), count(DISTINCT (u.device_id, u.message_id)),
               COALESCE(sum(u.quantity), 0)::numeric(20, 3)::text,
               (SELECT count(*) FROM iot_usage_reject r WHERE r.identifier LIKE %s)
          FROM iot_usage u JOIN iot_billing_device d ON d.id = u.device_id
         WHERE d.identifier LIKE %s""", (identifier_prefix + "%", identifier_prefix + "%"))
    return rows[0]


def _database_ready(db):
    try:
        modules = MODULES.split(",")
        rows = sql(db, "SELECT count(*) FROM ir_module_module WHERE name IN %s AND state = 'installed'",
                   (tuple(modules),))
        return rows[0][0] == len(modules)
    except psycopg2.OperationalError:
        return False


@pytest.fixture(scope="session", name="bridge_workdir")
def bridge_workdir_fixture():
    with tempfile.TemporaryDirectory(prefix="iot-bridge-test-") as workdir:
        yield workdir


@pytest.fixture(scope="session", name="server_db")
def server_db_fixture():
    db = os.environ.get("IOT_SERVER_DB") or "bridge_demo"
    if not _database_ready(db):
        subprocess.run([sys.executable, "-m", "odoo", "-c", "odoo.conf", "-d", db, "-i", MODULES,
                        "--stop-after-init", "--log-level=warn"], cwd=ROOT, check=True, timeout=900)
    # The demo users live in Europe/Brussels: between 23:00 and midnight UTC their "today" (due
    # dates, credit notes, dunning) is already tomorrow for tests that compute dates in UTC.
    # Users in UTC, as this machine, make the server's today the tests' today at any hour.
    sql(db, "UPDATE res_partner SET tz = 'UTC' WHERE id IN (SELECT partner_id FROM res_users)")
    return db


@pytest.fixture(scope="session", name="broker")
def broker_fixture(bridge_workdir):
    broker = Broker(bridge_workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session", name="odoo_server")
def odoo_server_fixture(server_db, broker, bridge_workdir):
    # Device commands go to the private broker.
    for key, value in (("iot_device.mqtt_host", "127.0.0.1"), ("iot_device.mqtt_port", str(broker.port))):
        sql(server_db, """
            INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
            VALUES (%s, %s, 1, 1, now(), now())
            ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""", (key, value))
    server = OdooServer(server_db, bridge_workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def chunk_crons(db):
    """Ids of the billing run's chunk crons."""
    return [row[0] for row in sql(db, """
        SELECT res_id FROM ir_model_data
         WHERE module = 'iot_contract' AND name IN ('iot_billing_run_chunk_cron', 'iot_billing_run_chunk_cron_2')""")]


def wake_crons(db):
    sql("postgres", "SELECT pg_notify(%s, %s)", ("cron_trigger", db))  # the channel Odoo listens on


def run_status(server, run_id, context):
    return server.rpc("iot.billing.run", "api_status", run_id, context=context)


def wait_run_finished(server, db, run_id, context, message, timeout=180):
    """The run's status once it is no longer running, waking the cron workers every second
    (else they look at their next poll, up to a minute later)."""

    def finished():
        wake_crons(db)
        status = run_status(server, run_id, context)
        return status if status["state"] != "running" else None

    return wait_until(finished, timeout, interval=1, message=message)


def company_with_plan(rpc, label):
    """A company of its own (chart of accounts, admin in it), a customer and a plan at 10.0 without tax."""
    tag = uuid.uuid4().hex[:8]
    company = rpc("res.company", "create", {"name": "%s %s" % (label, tag)})
    admin = rpc("res.users", "search", [("login", "=", "admin")])
    rpc("res.users", "write", admin, {"company_ids": [(4, company)]})
    rpc("account.chart.template", "try_loading", [], "generic_coa", company, False)
    context = {"allowed_company_ids": [company]}
    partner = rpc("res.partner", "create", {"name": "%s customer %s" % (label, tag)}, context=context)
    plan = rpc("product.product", "create", {"name": label + " plan", "default_code": "%s-%s" % (label.upper(), tag),
                                             "type": "service", "list_price": 10.0, "iot_is_plan": True,
                                             "company_id": company, "taxes_id": [(6, 0, [])]}, context=context)
    return tag, company, context, partner, plan


@pytest.fixture(name="only_billing_crons")
def only_billing_crons_fixture(request, server_db):
    """Pause every other active cron and make chunks small (the test module's
    ``CHUNK_CONTRACTS`` contracts, else one); undo both afterwards."""
    contracts_per_chunk = getattr(request.module, "CHUNK_CONTRACTS", 1)
    billing_crons = chunk_crons(server_db)
    paused = [row[0] for row in sql(server_db, "SELECT id FROM ir_cron WHERE active AND id != ALL(%s)",
                                    (billing_crons,))]
    sql(server_db, "UPDATE ir_cron SET active = false WHERE id = ANY(%s)", (paused,))
    sql(server_db, """
        INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
        VALUES ('iot_contract.billing_chunk_contracts', %s, 1, 1, now(), now())
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""", (str(contracts_per_chunk),))
    try:
        yield
    finally:
        sql(server_db, "DELETE FROM ir_config_parameter WHERE key = 'iot_contract.billing_chunk_contracts'")
        sql(server_db, "UPDATE ir_cron SET active = true WHERE id = ANY(%s)", (paused,))


@pytest.fixture(name="run_bridge")
def run_bridge_fixture(bridge_workdir, broker, odoo_server):
    """Factory: start a bridge process; all are stopped at the end of the test."""
    started = []

    def start(**overrides):
        bridge = BridgeProcess(bridge_workdir, broker, odoo_server, **overrides)
        bridge.start()
        started.append(bridge)
        return bridge

    try:
        yield start
    finally:
        for bridge in started:
            if bridge.process.poll() is None:
                bridge.stop()
