"""Faults with the real services: the broker restarted, PostgreSQL connections dropped,
the Odoo server SIGKILLed mid billing run, readings arriving during a run.

Every test uses its own identifiers (a random tag), is bounded in time, stops what it
started and leaves the session's broker and Odoo server running. Counts, sums and
"exactly once" are checked with SQL on the server database.
"""

import json
import signal
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

import psycopg2
import requests
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, simulate, sql, usage_counts, wait_until


def _tag():
    return uuid.uuid4().hex[:6].upper()


def _server_backends(odoo_server, pid=None):
    """PostgreSQL backends opened by the Odoo server process (Odoo names them odoo-<pid>)."""
    return sql(odoo_server.db, """
        SELECT pid, state, now() - xact_start FROM pg_stat_activity
         WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()""",
               (odoo_server.db, "odoo-%d" % (pid or odoo_server.process.pid)))


def _api(odoo_server, model, method, *args, timeout=120):
    """One JSON-RPC call as the Integration user; raises on any error (the caller retries)."""
    body = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": [odoo_server.db, _api.uid[odoo_server.db], BRIDGE_KEY, model, method, list(args)]}}
    answer = requests.post(odoo_server.url + "/jsonrpc", json=body, timeout=timeout).json()
    if answer.get("error"):
        raise RuntimeError(json.dumps(answer["error"])[:500])
    return answer["result"]


_api.uid = {}


def _login(odoo_server):
    if odoo_server.db not in _api.uid:
        body = {"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "common", "method": "login", "args": [odoo_server.db, BRIDGE_LOGIN, BRIDGE_KEY]}}
        _api.uid[odoo_server.db] = requests.post(odoo_server.url + "/jsonrpc", json=body, timeout=30).json()["result"]


def _fleet(odoo_server, tag, contracts, devices, date_start, kwh_price=None):
    """A plan (10.00 a month, no tax), ``contracts`` contracts of ``devices`` devices each,
    registered and activated over the API as the Integration user. Returns contract ids."""
    rpc = odoo_server.rpc
    _login(odoo_server)
    partner = rpc("res.partner", "create", {"name": "Faults customer " + tag, "is_company": True})
    plan = rpc("product.product", "create", {
        "name": "Faults plan " + tag, "default_code": "FP-" + tag, "type": "service", "list_price": 10.0,
        "iot_is_plan": True, "iot_duration_months": 12, "iot_billing_period": "monthly", "taxes_id": [(6, 0, [])]})
    if kwh_price is not None:
        template = rpc("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
        kwh = rpc("iot.usage.metric", "search", [("code", "=", "kwh")])[0]
        rpc("iot.usage.calculator", "create", {"name": "Energy " + tag, "product_tmpl_id": template,
                                               "metric_id": kwh, "pricing": "per_unit", "unit_price": kwh_price})
    contract_ids = rpc("iot.contract", "create", [
        {"name": "Faults %s %02d" % (tag, n), "reference": "FC-%s-%02d" % (tag, n), "partner_id": partner}
        for n in range(contracts)])
    identifiers = ["F%s-%02d-%03d" % (tag, c, d) for c in range(contracts) for d in range(devices)]
    _api(odoo_server, "iot_billing.device", "api_register", [{"identifier": i} for i in identifiers])
    activated = _api(odoo_server, "iot_billing.device", "api_activate", [
        {"identifier": i, "contract": "FC-%s-%s" % (tag, i.split("-")[1]), "plan": "FP-" + tag,
         "date_start": date_start.isoformat()} for i in identifiers])
    assert all("error" not in result for result in activated), activated[:3]
    return contract_ids


def _assert_billed_exactly_once(db, contract_ids, run_date):
    """Every schedule due by run_date invoiced once; one invoice per contract and period;
    invoice totals equal the sum of their schedules."""
    ids = tuple(contract_ids)
    due, planned = sql(db, """
        SELECT count(*), count(*) FILTER (WHERE state = 'planned' OR invoice_id IS NULL)
          FROM iot_invoicing_schedule WHERE contract_id IN %s AND invoice_date <= %s""", (ids, run_date))[0]
    assert due > 0 and planned == 0, (due, planned)
    periods = sql(db, """
        SELECT contract_id, date_from, count(DISTINCT invoice_id)
          FROM iot_invoicing_schedule WHERE contract_id IN %s AND invoice_id IS NOT NULL
         GROUP BY contract_id, date_from HAVING count(DISTINCT invoice_id) != 1""", (ids,))
    assert periods == [], "a contract/period with several invoices: %s" % periods[:5]
    mismatches = sql(db, """
        SELECT m.id, m.amount_untaxed, s.total
          FROM account_move m
          JOIN (SELECT invoice_id, sum(amount_total) AS total FROM iot_invoicing_schedule
                 WHERE contract_id IN %s AND invoice_id IS NOT NULL GROUP BY invoice_id) s ON s.invoice_id = m.id
         WHERE m.amount_untaxed != s.total OR m.state != 'posted'""", (ids,))
    assert mismatches == [], mismatches[:5]
    partners = sql(db, "SELECT DISTINCT partner_id FROM iot_contract WHERE id IN %s", (ids,))
    orphans = sql(db, """
        SELECT m.id FROM account_move m
         WHERE m.partner_id IN %s AND m.move_type = 'out_invoice'
           AND NOT EXISTS (SELECT 1 FROM iot_invoicing_schedule s WHERE s.invoice_id = m.id)""",
                  (tuple(p[0] for p in partners),))
    assert orphans == [], "invoices without schedules (a half-done run left behind): %s" % orphans
    return due


def _month_start(day, months_back):
    year, month = day.year, day.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    return date(year, month, 1)


# ----------------------------------------------------------------------
# MQTT: the broker restarted while the bridge is ingesting
# ----------------------------------------------------------------------
def test_broker_restart_during_ingestion_stores_every_reading_once(server_db, odoo_server, broker, run_bridge):
    tag = _tag()
    prefix = "BR%s-" % tag
    _login(odoo_server)
    devices = [{"identifier": "%s%04d" % (prefix, n + 1)} for n in range(5)]
    _api(odoo_server, "iot_billing.device", "api_register", devices)
    client_id = "bridge-restart-" + tag
    # Small batches: the bridge takes several seconds to drain what the simulator publishes at once.
    run_bridge(mqtt_client_id=client_id, batch_size=20, batch_max_delay=0.2, batch_idle_flush=0.2)
    args = ("--device-prefix", prefix, "--devices", 5, "--seed", 3)
    first = simulate(broker, *args, "--readings", 600, "--run-id", tag + "a", "--duplicates", 0.05)
    restarted = False
    try:
        stored = wait_until(lambda: usage_counts(server_db, prefix)[1] or None, 30, interval=0.05,
                            message="first readings")
        broker.stop()  # SIGTERM: Mosquitto writes its persistent sessions and queues to disk
        restarted = True
        assert stored < first["distinct"], "the bridge drained everything before the restart; publish more"
        time.sleep(1)
    finally:
        if broker.process.poll() is not None:
            broker.start()
    assert restarted
    # Devices keep publishing once the broker is back.
    second = simulate(broker, *args, "--readings", 100, "--run-id", tag + "b")
    expected_distinct = first["distinct"] + second["distinct"]
    expected_sum = "%.3f" % (Decimal(first["sum"]) + Decimal(second["sum"]))

    def done():
        counts = usage_counts(server_db, prefix)
        return counts if counts[1] == expected_distinct and counts[2] == expected_sum else None

    try:
        counts = wait_until(done, 90, interval=0.5, message="every reading after the broker restart")
    except AssertionError:
        raise AssertionError("expected %s readings summing to %s, got %s"
                             % (expected_distinct, expected_sum, usage_counts(server_db, prefix))) from None
    assert counts[0] == expected_distinct and counts[3] == 0  # stored once each, none rejected


# ----------------------------------------------------------------------
# PostgreSQL: the Odoo server's connections terminated during RPC ingestion
# ----------------------------------------------------------------------
def test_pg_connections_dropped_during_rpc_ingest_exactly_once(server_db, odoo_server):
    tag = _tag()
    prefix = "PG%s-" % tag
    identifiers = ["%s%02d" % (prefix, n) for n in range(10)]
    _login(odoo_server)
    _api(odoo_server, "iot_billing.device", "api_register", [{"identifier": i} for i in identifiers])
    start = time.time() - 3 * 3600
    batches = []
    for batch in range(30):
        batches.append([{
            "identifier": identifiers[n % 10], "metric": "kwh", "quantity": "%d.25" % (n % 7),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + batch * 300 + n)),
            "message_id": "%s-%d-%d" % (tag, batch, n)} for n in range(300)])
    expected_sum = sum(Decimal(entry["quantity"]) for batch in batches for entry in batch)
    failures = []

    client_deadline = time.monotonic() + 240
    episode_over = threading.Event()

    def send(batch):  # retries a failed call until it is accepted, as the bridge and the platforms do
        while True:
            try:
                return _api(odoo_server, "iot.usage", "api_ingest", batch, timeout=30)
            except (requests.RequestException, RuntimeError, ValueError) as error:
                failures.append(str(error)[:200])
                if time.monotonic() > client_deadline:
                    raise AssertionError("batch never accepted: %s" % failures[-1]) from None
                time.sleep(0.2)

    def client():
        for batch in batches:
            send(batch)
        # Keep the server busy until the fault episode is over: re-sent batches are duplicates.
        resent = 0
        while not episode_over.is_set():
            send(batches[resent % len(batches)])
            resent += 1

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    terminated = 0
    admin = psycopg2.connect(host="127.0.0.1", user="root", dbname=server_db)
    admin.autocommit = True
    try:
        # A fault episode, not a permanent outage: the server's connections are killed ten
        # times a second until requests have failed three times (a kill between two requests
        # goes unnoticed: Odoo's pool replaces the dead connection), then no more.
        deadline = time.monotonic() + 60
        while len(failures) < 3 and thread.is_alive() and time.monotonic() < deadline:
            with admin.cursor() as cursor:
                cursor.execute("""
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = %s AND application_name = %s AND pid <> pg_backend_pid()""",
                               (server_db, "odoo-%d" % odoo_server.process.pid))
                terminated += sum(1 for (ok,) in cursor.fetchall() if ok)
            time.sleep(0.1)
    finally:
        episode_over.set()
        admin.close()
    thread.join(260)
    assert not thread.is_alive(), "the client did not finish"
    assert terminated > 0 and len(failures) >= 3, "too few requests failed (%d killed, %s)" % (terminated, failures)
    counts = usage_counts(server_db, prefix)
    assert counts[1] == counts[0] == 30 * 300, counts
    assert Decimal(counts[2]) == expected_sum, (counts, expected_sum)
    assert counts[3] == 0
    # The server is still usable afterwards.
    assert _api(odoo_server, "iot.usage", "api_ingest", batches[0])["duplicates"] == 300


# ----------------------------------------------------------------------
# Billing: the Odoo server SIGKILLed mid-run, restarted, run again
# ----------------------------------------------------------------------
def test_billing_run_killed_mid_run_then_rerun_bills_once(server_db, odoo_server):
    tag = _tag()
    today = date.today()
    contract_ids = _fleet(odoo_server, tag, contracts=25, devices=4, date_start=_month_start(today, 6))
    run_date = today.isoformat()
    outcome = {}

    def run():
        try:
            outcome["result"] = odoo_server.rpc("iot.billing.run", "api_run", run_date)
        except Exception as error:  # noqa: BLE001 - the kill makes the call fail, which is expected
            outcome["error"] = error

    old_pid = odoo_server.process.pid
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        # Mid-run: the server holds a transaction open for more than a second.
        wait_until(lambda: any(row[2] and row[2] > timedelta(seconds=1) for row in _server_backends(odoo_server)),
                   60, interval=0.05, message="billing run in progress")
        odoo_server.process.send_signal(signal.SIGKILL)
        odoo_server.process.wait(10)
        thread.join(30)
        assert "error" in outcome, "the run finished before the kill: make the fleet larger (%s)" % outcome
        # PostgreSQL rolls back the dead server's transaction; its locks go with it.
        wait_until(lambda: not _server_backends(odoo_server, old_pid), 30, message="dead server's backends gone")
        invoiced = sql(server_db, """SELECT count(*) FROM iot_invoicing_schedule
                                      WHERE contract_id IN %s AND invoice_id IS NOT NULL""", (tuple(contract_ids),))
        assert invoiced[0][0] == 0, "a killed run must leave nothing half billed"
    finally:
        if odoo_server.process.poll() is not None:
            odoo_server.start()
    result = odoo_server.rpc("iot.billing.run", "api_run", run_date)
    assert not [e for e in result["errors"] if e["contract_id"] in contract_ids], result["errors"]
    due = _assert_billed_exactly_once(server_db, contract_ids, run_date)
    assert due == 25 * 4 * sql(server_db, """SELECT count(DISTINCT date_from) FROM iot_invoicing_schedule
                                            WHERE contract_id IN %s AND invoice_date <= %s""",
                                 (tuple(contract_ids), run_date))[0][0]
    # A third run finds nothing left to bill for these contracts.
    again = odoo_server.rpc("iot.billing.run", "api_run", run_date)
    mine = sql(server_db, "SELECT count(*) FROM account_move WHERE id = ANY(%s) AND partner_id IN "
               "(SELECT partner_id FROM iot_contract WHERE id IN %s)",
               (again["invoice_ids"] or [0], tuple(contract_ids)))
    assert mine[0][0] == 0
    _assert_billed_exactly_once(server_db, contract_ids, run_date)


# ----------------------------------------------------------------------
# Billing while readings keep arriving
# ----------------------------------------------------------------------
def test_run_while_readings_arrive_late_ones_go_to_next_period(server_db, odoo_server):
    tag = _tag()
    [contract_id] = _fleet(odoo_server, tag, contracts=1, devices=20, date_start=date(2024, 1, 1), kwh_price=1.0)
    identifiers = ["F%s-00-%03d" % (tag, d) for d in range(20)]
    stop = threading.Event()
    sent, errors = [], []

    def stream():  # readings of January, sent before, during and after January is billed
        batch = 0
        while not stop.is_set() or batch < 5:
            entries = [{"identifier": identifiers[n % 20], "metric": "kwh", "quantity": "1.5",
                        "timestamp": "2024-01-%02dT%02d:%02d:00Z" % (1 + batch % 28, n % 24, batch % 60),
                        "message_id": "%s-%d-%d" % (tag, batch, n)} for n in range(100)]
            for _attempt in range(10):
                try:
                    result = _api(odoo_server, "iot.usage", "api_ingest", entries)
                    assert result["accepted"] == 100, result
                    sent.append(len(entries))
                    break
                except (requests.RequestException, RuntimeError) as error:
                    errors.append(error)
                    time.sleep(0.2)
            batch += 1

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(sent) >= 3, 30, message="readings before the run")
        first = odoo_server.rpc("iot.billing.run", "api_run", "2024-01-31")
        during = len(sent)
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive() and not errors, errors[:3]
    assert len(sent) > during, "no reading arrived after the first run"
    total = Decimal("1.5") * 100 * len(sent)
    january = sql(server_db, """
        SELECT s.id, s.usage_quantity FROM iot_invoicing_schedule s
         WHERE s.contract_id = %s AND s.date_from = '2024-01-01'""", (contract_id,))
    assert first["invoice_ids"] and all(row[1] > 0 for row in january)
    second = odoo_server.rpc("iot.billing.run", "api_run", "2024-02-29")
    assert second["invoice_ids"]
    _assert_billed_exactly_once(server_db, [contract_id], "2024-02-29")
    # Every reading invoiced once: on January's schedules, or late on February's.
    rows = sql(server_db, """
        SELECT s.date_from, b.is_late, sum(b.reading_count), sum(b.quantity_sum)
          FROM iot_usage_bucket b JOIN iot_invoicing_schedule s ON s.id = b.schedule_id
         WHERE s.contract_id = %s AND b.state = 'invoiced' GROUP BY 1, 2 ORDER BY 1, 2""", (contract_id,))
    by_period = {(row[0].isoformat(), row[1]): (row[2], row[3]) for row in rows}
    assert set(by_period) <= {("2024-01-01", False), ("2024-02-01", True)}, by_period
    assert ("2024-02-01", True) in by_period, "the readings that arrived during/after the run were not billed late"
    assert sum(count for count, _sum in by_period.values()) == 100 * len(sent)
    assert sum(quantity for _count, quantity in by_period.values()) == total
    not_invoiced = sql(server_db, """SELECT count(*) FROM iot_usage_bucket b
                                        JOIN iot_billing_device d ON d.id = b.device_id
                                      WHERE d.identifier LIKE %s AND b.state != 'invoiced'""", ("F%s-%%" % tag,))
    assert not_invoiced[0][0] == 0
    # Invoiced usage quantity = readings, once: schedules' usage sums to the total.
    usage = sql(server_db, """SELECT sum(usage_quantity), sum(usage_amount) FROM iot_invoicing_schedule
                               WHERE contract_id = %s AND date_from IN ('2024-01-01', '2024-02-01')""", (contract_id,))
    assert Decimal(str(usage[0][0])) == total and Decimal(str(usage[0][1])) == total
