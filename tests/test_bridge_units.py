"""Bridge building blocks on real files: configuration, payload parsing, spool."""

import base64
import json
import os
import random
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bridge"))

import paho.mqtt.client as mqtt  # noqa: E402

from iot_bridge import config as bridge_config  # noqa: E402
from iot_bridge import simulator  # noqa: E402
from iot_bridge.payloads import parse_message, parse_topic  # noqa: E402
from iot_bridge.spool import Spool, SpoolFull  # noqa: E402

READING = {"message_id": "m1", "metric": "kwh", "quantity": "1.5", "timestamp": "2026-11-01T00:00:00Z"}


# ---------------------------------------------------------------- config
def test_config_ini_then_environment(tmp_path):
    path = tmp_path / "bridge.ini"
    path.write_text("[bridge]\nodoo_db = demo\nodoo_key = k\nbatch_size = 50\nmqtt_protocol = 5\n"
                    "mqtt_shared_group = billing\ntopic_prefix = acme/\n")
    config = bridge_config.load(str(path), environ={"IOT_BRIDGE_BATCH_SIZE": "70", "IOT_BRIDGE_MQTT_TLS": "yes"})
    assert config.batch_size == 70 and config.mqtt_tls is True and config.mqtt_protocol == "5"
    assert config.subscriptions() == ["$share/billing/acme/iot/+/usage", "$share/billing/acme/iot/+/events"]


def test_config_toml(tmp_path):
    path = tmp_path / "bridge.toml"
    path.write_text('[bridge]\nodoo_db = "demo"\nodoo_key = "k"\nbatch_max_delay = 0.25\n')
    config = bridge_config.load(str(path), environ={})
    assert config.batch_max_delay == 0.25 and config.subscriptions() == ["iot/+/usage", "iot/+/events"]


@pytest.mark.parametrize("text, message", [
    ("[bridge]\nodoo_key = k\n", "odoo_db is required"),
    ("[bridge]\nodoo_db = d\n", "odoo_key is required"),
    ("[bridge]\nodoo_db = d\nodoo_key = k\nbatch_size = many\n", "batch_size"),
    ("[bridge]\nodoo_db = d\nodoo_key = k\nbatch_size = 20000\n", "between 1 and 10000"),
    ("[bridge]\nodoo_db = d\nodoo_key = k\nmqtt_protocol = 4\n", "mqtt_protocol"),
    ("[bridge]\nodoo_db = d\nodoo_key = k\ntypo = 1\n", "unknown key 'typo'"),
    ("[other]\n", "no [bridge] section"),
])
def test_config_errors_are_clear(tmp_path, text, message):
    path = tmp_path / "bridge.ini"
    path.write_text(text)
    with pytest.raises(bridge_config.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        bridge_config.load(str(path), environ={})


# ---------------------------------------------------------------- payloads
def test_topic_parsing():
    assert parse_topic("iot/SL-100/usage") == ("SL-100", "usage")
    assert parse_topic("acme/iot/SL-100/events", "acme/") == ("SL-100", "events")
    assert parse_topic("iot/SL-100/commands") is None
    assert parse_topic("iot//usage") is None
    assert parse_topic("other/iot/x/usage", "acme/") is None


def test_single_and_batched_readings_take_identifier_from_topic():
    parsed = parse_message("iot/D1/usage", json.dumps(dict(READING, identifier="OTHER")).encode())
    assert parsed.usage == [dict(READING, identifier="D1")] and not parsed.rejects
    parsed = parse_message("iot/D1/usage", json.dumps([READING, dict(READING, message_id="m2"), 7]).encode())
    assert [r["message_id"] for r in parsed.usage] == ["m1", "m2"]
    assert len(parsed.rejects) == 1 and parsed.rejects[0]["reason"] == "entry must be a JSON object"
    parsed = parse_message("iot/D1/events", json.dumps({"message_id": "e", "event_type": "boot"}).encode())
    assert parsed.events == [{"message_id": "e", "event_type": "boot", "identifier": "D1"}]


@pytest.mark.parametrize("payload, reason", [
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"{not json", "not JSON"),
    (b"NaN", "not JSON"),
    (b"[]", "non-empty list"),
    (b'"text"', "JSON object"),
    (b"x" * 300, "exceeds the limit"),
])
def test_bad_payloads_become_reject_items(payload, reason):
    parsed = parse_message("iot/D1/usage", payload, max_bytes=256)
    assert not parsed.usage and len(parsed.rejects) == 1
    item = parsed.rejects[0]
    assert reason in item["reason"] and item["topic"] == "iot/D1/usage" and item["raw"]
    if payload.startswith(b"\xff"):
        assert base64.b64decode(item["raw"].removeprefix("base64:")) == payload


def test_unexpected_topic_is_rejected_not_dropped():
    parsed = parse_message("iot/D1/telemetry", b"{}")
    assert parsed.rejects[0]["reason"] == "unexpected topic"


# ---------------------------------------------------------------- spool
def test_spool_survives_reopen_and_keeps_order(tmp_path):
    spool = Spool(str(tmp_path))
    assert not spool
    spool.put("usage", [READING], received=1.0)
    spool.put("reject", [{"topic": "t", "raw": "x", "reason": "r"}])
    spool.close()
    spool = Spool(str(tmp_path))
    head = spool.head()
    assert head["method"] == "usage" and head["items"] == [READING] and head["received"] == 1.0
    assert spool.stats()[:2] == (2, 2)
    spool.failed(head["id"], "boom")
    assert spool.head()["attempts"] == 1
    spool.replace(head["id"], [("usage", [READING], 0), ("usage", [READING], 0)])
    assert spool.stats()[:2] == (3, 3) and spool.head()["method"] == "reject"
    while spool:
        spool.delete(spool.head()["id"])
    assert spool.stats()[:2] == (0, 0)


def test_spool_is_bounded(tmp_path):
    spool = Spool(str(tmp_path), max_bytes=600)
    spool.put("usage", [READING] * 5)  # the first call always fits
    with pytest.raises(SpoolFull):
        spool.put("usage", [READING] * 5)
    spool.delete(spool.head()["id"])
    spool.put("usage", [READING] * 5)


# ---------------------------------------------------------------- poison call isolation
class _StubOdoo:
    """A real HTTP JSON-RPC endpoint that refuses, as a whole, any api_ingest call with a poison entry."""

    def __init__(self):
        import http.server
        import threading

        stub = self
        self.ingested, self.rejected, self.calls = [], [], []

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                params = body["params"]
                if params["service"] == "common":
                    answer = {"result": 7}
                else:
                    _db, _uid, _key, model, method, args, _kwargs = params["args"]
                    items = args[0]
                    if method == "api_ingest" and any(i.get("message_id") == "poison" for i in items):
                        answer = {"error": {"message": "Odoo Server Error",
                                            "data": {"name": "builtins.TypeError", "message": "boom"}}}
                    elif method == "api_ingest":
                        stub.ingested += items
                        stub.calls.append(len(items))
                        answer = {"result": {"accepted": len(items), "duplicates": 0, "rejected": []}}
                    else:
                        stub.rejected += items
                        answer = {"result": {"stored": len(items)}}
                data = json.dumps(dict(answer, jsonrpc="2.0", id=body["id"])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_call_odoo_keeps_refusing_is_split_until_the_poison_entry_is_rejected(tmp_path):
    from iot_bridge.bridge import Bridge

    stub = _StubOdoo()
    try:
        config = bridge_config.load(environ={
            "IOT_BRIDGE_ODOO_URL": stub.url, "IOT_BRIDGE_ODOO_DB": "x", "IOT_BRIDGE_ODOO_KEY": "k",
            "IOT_BRIDGE_SPOOL_DIR": str(tmp_path)})
        bridge = Bridge(config)
        items = [dict(READING, message_id="m%d" % n, identifier="D1") for n in range(7)]
        items[4]["message_id"] = "poison"
        bridge.spool.put("usage", items)
        for _ in range(50):
            if not bridge.spool:
                break
            bridge._replay()
        assert not bridge.spool
        assert sorted(i["message_id"] for i in stub.ingested) == ["m0", "m1", "m2", "m3", "m5", "m6"]
        [reject] = stub.rejected
        assert reject["topic"] == "iot/D1/usage" and "boom" in reject["reason"]
        assert json.loads(reject["raw"])["message_id"] == "poison"
        bridge.close()
    finally:
        stub.server.shutdown()


# ---------------------------------------------------------------- adaptive batches
def _limits(**settings):
    from iot_bridge.bridge import BatchLimits

    environ = {"IOT_BRIDGE_ODOO_DB": "x", "IOT_BRIDGE_ODOO_KEY": "k"}
    environ.update(("IOT_BRIDGE_" + key.upper(), str(value)) for key, value in settings.items())
    return BatchLimits(bridge_config.load(environ=environ))


def test_a_batch_grows_while_messages_are_waiting_up_to_the_call_limit():
    limits = _limits(batch_size=1000, batch_size_max=10000, mqtt_receive_maximum=1000)
    assert not limits.full(entries=999, messages=20, waiting=0)  # wait for more (or idle, or age)
    assert limits.full(entries=1000, messages=20, waiting=0)  # nothing waiting: send now
    assert not limits.full(entries=1000, messages=20, waiting=300)  # waiting: take them too
    assert not limits.full(entries=9999, messages=200, waiting=300)
    assert limits.full(entries=10000, messages=200, waiting=300)  # one Odoo call at most


def test_a_batch_holds_at_most_half_the_inflight_window():
    # Single-reading messages: 500 of a window of 1,000 unacknowledged, so the broker keeps
    # sending the other half while this batch is in Odoo.
    limits = _limits(batch_size=1000, mqtt_receive_maximum=1000)
    assert not limits.full(entries=499, messages=499, waiting=800)
    assert limits.full(entries=500, messages=500, waiting=800)


@pytest.mark.parametrize("settings, message", [
    ({"batch_size": 500, "batch_size_max": 400}, "batch_size_max must be between batch_size"),
    ({"batch_size_max": 20000}, "batch_size_max must be between batch_size"),
    ({"mqtt_receive_maximum": 1}, "mqtt_receive_maximum"),
])
def test_batch_limits_are_checked(settings, message):
    with pytest.raises(bridge_config.ConfigError, match=message):
        _limits(**settings)


def test_the_worker_sends_what_is_waiting_in_large_calls_and_a_trickle_at_once(tmp_path):
    """The worker loop against a real HTTP endpoint: 60 gateway messages of 50 readings already
    waiting go in calls of batch_size_max; a lone message goes as soon as nothing follows."""
    from iot_bridge.bridge import Bridge

    stub = _StubOdoo()
    bridge = None
    try:
        config = bridge_config.load(environ={
            "IOT_BRIDGE_ODOO_URL": stub.url, "IOT_BRIDGE_ODOO_DB": "x", "IOT_BRIDGE_ODOO_KEY": "k",
            "IOT_BRIDGE_SPOOL_DIR": str(tmp_path), "IOT_BRIDGE_BATCH_SIZE": "100",
            "IOT_BRIDGE_BATCH_SIZE_MAX": "1000", "IOT_BRIDGE_MQTT_RECEIVE_MAXIMUM": "1000"})
        bridge = Bridge(config)

        def deliver(mid, count):
            message = mqtt.MQTTMessage(mid=mid, topic=b"iot/D%d/usage" % (mid % 3))
            message.qos = 0  # nothing to acknowledge: no broker in this test
            message.payload = json.dumps(
                [dict(READING, message_id="m%d-%d" % (mid, n)) for n in range(count)]).encode()
            bridge._on_message(bridge.client, None, message)

        for mid in range(1, 61):
            deliver(mid, 50)
        worker = threading.Thread(target=bridge.run)
        worker.start()
        for _ in range(200):
            if len(stub.ingested) == 3000:
                break
            time.sleep(0.05)
        deliver(61, 50)
        for _ in range(200):
            if len(stub.ingested) == 3050:
                break
            time.sleep(0.05)
        bridge.stop()
        worker.join(10)
        assert stub.calls == [1000, 1000, 1000, 50]
        assert len({item["message_id"] for item in stub.ingested}) == 3050
    finally:
        if bridge:
            bridge.close()
        stub.server.shutdown()


# ---------------------------------------------------------------- simulator
def test_simulator_keeps_a_bounded_window_of_unconfirmed_publishes(broker, monkeypatch):
    """More messages than the window (as 200,000 are more than MQTT's 65,535 message ids): all arrive."""

    monkeypatch.setattr(simulator, "MAX_UNCONFIRMED", 3)
    args = simulator.build_parser().parse_args(
        ["--port", str(broker.port), "--devices", "2", "--readings", "5", "--device-prefix", "WND-", "--seed", "1"])
    messages, expected = simulator.generate(args, random.Random(1))
    received, subscribed = [], threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_subscribe = lambda *_args: subscribed.set()
    listener.on_message = lambda _client, _userdata, message: received.append(json.loads(message.payload))
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe("iot/+/usage", qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        _elapsed, unconfirmed = simulator.publish(args, messages)
        for _ in range(100):
            if len(received) == len(messages):
                break
            time.sleep(0.05)
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert unconfirmed == 0
    assert len(messages) == expected["distinct"] == 10
    assert sorted(reading["message_id"] for reading in received) == sorted(
        json.loads(payload)["message_id"] for _topic, payload, _kind in messages)


@pytest.mark.parametrize("name, transient", [
    ("psycopg2.OperationalError", True),  # connection lost
    ("psycopg2.errors.SerializationFailure", True),
    ("psycopg2.errors.AdminShutdown", True),
    ("psycopg2.errors.CheckViolation", False),  # the same data fails the same way again
    ("psycopg2.errors.UniqueViolation", False),
    ("psycopg2.errors.NumericValueOutOfRange", False),
    ("builtins.ValueError", False),
])
def test_only_connection_and_concurrency_errors_are_transient(name, transient):
    from iot_bridge.odoo_client import is_transient

    assert is_transient(name) is transient
