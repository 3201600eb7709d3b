"""The bridge against a real Mosquitto (project config) and a real Odoo server.

Each test uses devices of its own (identifier prefix per test), counts rows
with SQL on the server database, and stops every process it started.
"""

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from bridge_fixtures import (
    BRIDGE_KEY,
    BRIDGE_LOGIN,
    free_port,
    simulate,
    simulate_async,
    sql,
    usage_counts,
    wait_until,
)


def _register(odoo_server, identifiers):
    odoo_server.rpc("iot_billing.device", "api_register", [{"identifier": i} for i in identifiers],
                    login=BRIDGE_LOGIN, password=BRIDGE_KEY)


def _prefix():
    return "B%s-" % uuid.uuid4().hex[:6]


# One start for every simulated run: a run re-sent is the same messages, timestamps included
# (a message id is unique per device and timestamp, addons/iot_usage README).
START = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()


def _sim_args(prefix, devices, readings, *extra):
    return ("--device-prefix", prefix, "--devices", devices, "--readings", readings,
            "--run-id", prefix.rstrip("-"), "--seed", 7, "--start", START, *extra)


def _wait_counts(server_db, prefix, expected, timeout):
    def done():
        counts = usage_counts(server_db, prefix)
        return counts if (counts[1], counts[2], counts[3]) == expected else None

    try:
        return wait_until(done, timeout, interval=0.5, message="readings of %s" % prefix)
    except AssertionError:
        raise AssertionError("expected (distinct, sum, rejected) %s, got %s"
                             % (expected, usage_counts(server_db, prefix)[1:])) from None


def test_readings_land_once_duplicates_count_once_malformed_rejected(server_db, odoo_server, broker, run_bridge):
    prefix = _prefix()
    _register(odoo_server, ["%s%04d" % (prefix, n + 1) for n in range(5)])
    bridge = run_bridge()
    single = simulate(broker, *_sim_args(prefix, 5, 40, "--duplicates", 0.2, "--malformed", 0.1))
    assert single["duplicates"] > 0 and single["malformed"] > 0
    counts = _wait_counts(server_db, prefix, (single["distinct"], single["sum"], single["malformed"]), 60)
    assert counts[0] == counts[1] == 200  # stored once each
    # Gateways: the same readings again, batched 10 per message -> nothing new.
    batched = simulate(broker, *_sim_args(prefix, 5, 40, "--batch", 10))
    # Redelivery of what was already stored (same message ids) counts once.
    again = simulate(broker, *_sim_args(prefix, 5, 40, "--duplicates", 0.2, "--malformed", 0.1))
    total = single["published_messages"] + batched["published_messages"] + again["published_messages"]
    wait_until(lambda: bridge.stat("received") >= total and bridge.stat("queue") == 0, 60,
               message="bridge received %d messages" % total)
    time.sleep(2)
    counts = usage_counts(server_db, prefix)
    assert (counts[0], counts[2]) == (200, single["sum"])
    # Malformed ones re-sent are kept once: those api_ingest stores by their message id,
    # unreadable payloads (api_reject) by an id derived from their topic and bytes.
    assert counts[3] == single["malformed"]


def test_events_and_unknown_devices(server_db, odoo_server, broker, run_bridge):
    prefix = _prefix()
    _register(odoo_server, [prefix + "0001"])
    run_bridge()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        event = {"message_id": prefix + "e1", "event_type": "door_open", "timestamp": "2026-11-20T10:00:00Z",
                 "payload": {"door": 2}}
        for _ in range(2):
            client.publish("iot/%s0001/events" % prefix, json.dumps(event), qos=1).wait_for_publish(5)
        client.publish("iot/%s9999/events" % prefix, json.dumps(event), qos=1).wait_for_publish(5)
        reading = {"message_id": "u1", "metric": "kwh", "quantity": 1, "timestamp": "2026-11-20T10:00:00Z"}
        client.publish("iot/%s9999/usage" % prefix, json.dumps(reading), qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
    wait_until(lambda: sql(server_db, "SELECT count(*) FROM iot_billing_device_event WHERE message_id = %s",
                           (prefix + "e1",))[0][0] == 1, 30, message="event stored")
    # The event of an unknown device and its reading are kept as rejected readings.
    wait_until(lambda: usage_counts(server_db, prefix)[3] == 2, 30, message="2 rejected rows")
    time.sleep(1.5)
    events = sql(server_db, "SELECT count(*) FROM iot_billing_device_event WHERE message_id = %s", (prefix + "e1",))
    assert events[0][0] == 1


def test_odoo_outage_loses_nothing(server_db, odoo_server, broker, run_bridge):
    prefix = _prefix()
    _register(odoo_server, ["%s%04d" % (prefix, n + 1) for n in range(4)])
    bridge = run_bridge()
    sim = simulate_async(broker, *_sim_args(prefix, 4, 250, "--rate", 150, "--duplicates", 0.05))
    try:
        wait_until(lambda: usage_counts(server_db, prefix)[1] > 50, 60, message="first readings")
        odoo_server.stop()  # mid-stream
        out, err = sim.communicate(timeout=120)
        assert sim.returncode == 0, err
        expected = json.loads(out)
        assert usage_counts(server_db, prefix)[1] < expected["distinct"]
        wait_until(lambda: "spooling" in bridge.read_log(), 30, message="bridge spooling")
        time.sleep(3)  # a few retries against the stopped server
    finally:
        if sim.poll() is None:
            sim.kill()
        if odoo_server.process.poll() is not None:
            odoo_server.start()
    counts = _wait_counts(server_db, prefix, (expected["distinct"], expected["sum"], 0), 120)
    assert counts[0] == expected["distinct"]
    wait_until(lambda: "Odoo reachable again" in bridge.read_log(), 10)


def test_bridge_sigkill_then_restart_exactly_once(server_db, odoo_server, broker, run_bridge, bridge_workdir):
    prefix = _prefix()
    _register(odoo_server, ["%s%04d" % (prefix, n + 1) for n in range(10)])
    client_id = "bridge-kill-" + prefix
    bridge = run_bridge(mqtt_client_id=client_id, batch_size=200)
    sim = simulate_async(broker, *_sim_args(prefix, 10, 600, "--rate", 1000))
    try:
        wait_until(lambda: usage_counts(server_db, prefix)[1] > 0, 60, interval=0.1, message="first batch")
        bridge.kill()  # SIGKILL mid-stream: unacknowledged messages stay in the broker session
        stored_at_kill = usage_counts(server_db, prefix)[1]
        out, err = sim.communicate(timeout=60)
        assert sim.returncode == 0, err
    finally:
        if sim.poll() is None:
            sim.kill()
    expected = json.loads(out)
    assert stored_at_kill < expected["distinct"], "the bridge finished before the kill; make the run larger"
    # Same client id (persistent session) and same spool directory.
    run_bridge(mqtt_client_id=client_id, batch_size=200, spool_dir=bridge.settings["spool_dir"])
    counts = _wait_counts(server_db, prefix, (expected["distinct"], expected["sum"], 0), 120)
    assert counts[0] == expected["distinct"]


def test_suspended_device_receives_block_command(server_db, odoo_server, broker):
    prefix = _prefix()
    identifier = prefix + "0001"
    _register(odoo_server, [identifier])
    device_id = odoo_server.rpc("iot_billing.device", "search", [("identifier", "=", identifier)])[0]
    odoo_server.rpc("iot_billing.device", "action_activate", [device_id])
    received = []
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, message: received.append(json.loads(message.payload))
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.subscribe("iot/%s/commands" % identifier, qos=1)
        assert subscribed.wait(5)
        odoo_server.rpc("iot_billing.device", "action_suspend", [device_id])
        wait_until(lambda: received, 20, message="block command")
        assert received[0]["command"] == "block" and received[0]["message_id"]
        odoo_server.rpc("iot_billing.device", "action_resume", [device_id])
        wait_until(lambda: len(received) == 2, 20, message="unblock command")
        assert received[1]["command"] == "unblock"
    finally:
        client.disconnect()
        client.loop_stop()
    commands = odoo_server.rpc("iot_billing.device.command", "search_read", [("device_id", "=", device_id)],
                               fields=["command", "state", "attempts"], order="id")
    assert [(c["command"], c["state"], c["attempts"]) for c in commands] == [
        ("block", "sent", 1), ("unblock", "sent", 1)]


def test_unpublished_command_is_visible_and_retried(server_db, odoo_server, broker):
    prefix = _prefix()
    identifier = prefix + "0001"
    _register(odoo_server, [identifier])
    device_id = odoo_server.rpc("iot_billing.device", "search", [("identifier", "=", identifier)])[0]
    odoo_server.rpc("iot_billing.device", "action_activate", [device_id])
    params = "ir.config_parameter"
    odoo_server.rpc(params, "set_param", "iot_device.mqtt_port", str(free_port()))  # nobody listens
    try:
        odoo_server.rpc("iot_billing.device", "action_terminate", [device_id])
        command = wait_until(lambda: odoo_server.rpc(
            "iot_billing.device.command", "search_read", [("device_id", "=", device_id), ("state", "=", "failed")],
            fields=["command", "attempts", "last_error"]), 20, message="failed command")[0]
        assert command["command"] == "block" and command["attempts"] == 1
        assert "cannot publish to MQTT broker" in command["last_error"]
    finally:
        odoo_server.rpc(params, "set_param", "iot_device.mqtt_port", str(broker.port))
    odoo_server.rpc("iot_billing.device.command", "action_retry", [command["id"]])
    [command] = odoo_server.rpc("iot_billing.device.command", "read", [command["id"]], fields=["state", "attempts"])
    assert (command["state"], command["attempts"]) == ("sent", 2)


def test_wrong_key_is_reported_and_spooled_data_survives_restart(server_db, odoo_server, broker, run_bridge):
    prefix = _prefix()
    _register(odoo_server, ["%s%04d" % (prefix, n + 1) for n in range(2)])
    client_id = "bridge-key-" + prefix
    bad = run_bridge(odoo_key="not-the-key", mqtt_client_id=client_id, stats_interval=0.5)
    wait_until(lambda: "authentication failed for login 'iot-bridge'" in bad.read_log(), 20,
               message="authentication error in the log")
    expected = simulate(broker, *_sim_args(prefix, 2, 30))
    wait_until(lambda: bad.stat("in_spool") == expected["distinct"], 30, message="readings spooled")
    bad.stop()
    assert usage_counts(server_db, prefix)[1] == 0
    run_bridge(mqtt_client_id=client_id, spool_dir=bad.settings["spool_dir"])
    counts = _wait_counts(server_db, prefix, (expected["distinct"], expected["sum"], 0), 60)
    assert counts[0] == expected["distinct"]


def test_two_v5_bridges_share_the_load(server_db, odoo_server, broker, run_bridge):
    prefix = _prefix()
    _register(odoo_server, ["%s%04d" % (prefix, n + 1) for n in range(10)])
    group = "billing-" + prefix.rstrip("-")
    bridges = [run_bridge(mqtt_protocol=5, mqtt_shared_group=group, stats_interval=0.5) for _ in range(2)]
    expected = simulate(broker, *_sim_args(prefix, 10, 200, "--duplicates", 0.05))
    counts = _wait_counts(server_db, prefix, (expected["distinct"], expected["sum"], 0), 90)
    assert counts[0] == expected["distinct"]
    wait_until(lambda: sum(b.stat("received") for b in bridges) == expected["published_messages"], 10,
               message="both bridges' stats")
    assert all(b.stat("received") > 0 for b in bridges), [b.stat("received") for b in bridges]


def test_a_poison_entry_is_rejected_and_does_not_stall_the_rest(server_db, odoo_server, broker, run_bridge):
    """An entry that passes validation but fails in the database is not "Odoo unavailable":
    the bridge isolates it (split and reject) while every other reading is stored."""
    prefix = _prefix()
    identifier = prefix + "0001"
    _register(odoo_server, [identifier])
    poison = prefix + "poison"
    # A repeatable database error for one message id, as a bad value or a constraint would give.
    constraint = "test_poison_%s" % prefix.strip("-").lower()
    sql(server_db, "ALTER TABLE iot_usage ADD CONSTRAINT %s CHECK (message_id IS DISTINCT FROM '%s') NOT VALID"
        % (constraint, poison))
    try:
        bridge = run_bridge(batch_size=50, batch_max_delay=0.2)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            for number in range(20):
                message_id = poison if number == 7 else "%sm%d" % (prefix, number)
                reading = {"message_id": message_id, "metric": "kwh", "quantity": number + 1,
                           "timestamp": "2026-11-20T10:00:00Z"}
                client.publish("iot/%s/usage" % identifier, json.dumps(reading), qos=1).wait_for_publish(5)
        finally:
            client.disconnect()
            client.loop_stop()
        # 19 readings stored (sum 1..20 minus the poison's 8), the poison kept as a rejected row.
        _wait_counts(server_db, prefix, (19, "%d.000" % (210 - 8), 1), 90)
        [(reason,)] = sql(server_db, "SELECT reason FROM iot_usage_reject r WHERE r.identifier = %s"
                          " AND r.state = 'open'", (identifier,))
        assert "CheckViolation" in reason or constraint in reason, reason
        wait_until(lambda: bridge.stat("in_spool") == 0, 15, message="the bridge's spool drained")
    finally:
        sql(server_db, "ALTER TABLE iot_usage DROP CONSTRAINT IF EXISTS %s" % constraint)
