"""Device simulator: N devices x M readings to ``iot/<identifier>/usage`` at a target rate.

    python3 -m iot_bridge.simulator --devices 10 --readings 100 --rate 500 \\
        --duplicates 0.05 --malformed 0.01 --batch 1 [--identifiers SL-100,SL-101]

Prints a JSON summary on stdout: what was published and what Odoo should end up
with (distinct readings, their quantity sum, malformed count), for tests and benchmarks.
"""

import argparse
import collections
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import paho.mqtt.client as mqtt

# Malformed payloads, one bad entry each: the first two never reach api_ingest
# (api_reject), the others are JSON that api_ingest rejects and stores.
MALFORMED = (
    lambda reading: b"\xff\xfe\x00 not utf-8",
    lambda reading: b"{not json",
    lambda reading: json.dumps({k: v for k, v in reading.items() if k != "quantity"}).encode(),
    lambda reading: json.dumps(dict(reading, quantity="lots")).encode(),
    lambda reading: json.dumps(dict(reading, timestamp="yesterday")).encode(),
)
MAX_UNCONFIRMED = 10000


def build_parser():
    parser = argparse.ArgumentParser(prog="iot_bridge.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--prefix", default="", help="tenant topic prefix, as the bridge's topic_prefix")
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--identifiers", default="", help="comma-separated identifiers (default SIM-0001...)")
    parser.add_argument("--device-prefix", default="SIM-")
    parser.add_argument("--readings", type=int, default=100, help="readings per device")
    parser.add_argument("--metric", default="kwh", help="metric code of the readings")
    parser.add_argument("--rate", type=float, default=0, help="messages per second (0 = as fast as possible)")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of messages re-sent")
    parser.add_argument("--malformed", type=float, default=0.0, help="share of extra malformed messages")
    parser.add_argument("--batch", type=int, default=1, help="readings per message (gateways batch)")
    parser.add_argument("--qos", type=int, default=1, choices=(0, 1))
    parser.add_argument("--run-id", default="", help="message_id prefix (default random)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--start", default="", help="timestamp of the first reading (ISO 8601, default now-1h)")
    parser.add_argument("--register", action="store_true",
                        help="register the devices first through Odoo's api_register (needs --odoo-*)")
    parser.add_argument("--odoo-url", default="http://127.0.0.1:8069")
    parser.add_argument("--odoo-db", default="")
    parser.add_argument("--odoo-login", default="iot-bridge")
    parser.add_argument("--odoo-password", default="")
    return parser


def generate(args, rng):
    """Yield (topic, payload bytes, kind) and fill the expectations dict."""
    identifiers = [i.strip() for i in args.identifiers.split(",") if i.strip()] or [
        "%s%04d" % (args.device_prefix, n + 1) for n in range(args.devices)]
    run_id = args.run_id or uuid.uuid4().hex[:8]
    start = (datetime.fromisoformat(args.start.replace("Z", "+00:00")) if args.start
             else datetime.now(UTC) - timedelta(hours=1))
    step = timedelta(seconds=min(60.0, 3000.0 / max(args.readings, 1)))
    expected = {"run_id": run_id, "identifiers": identifiers, "metric": args.metric,
                "distinct": 0, "sum": Decimal(0), "per_device": {}, "malformed": 0, "duplicates": 0}
    messages = []
    for identifier in identifiers:
        readings = []
        for n in range(args.readings):
            quantity = Decimal(rng.randint(1, 100000)) / 1000
            readings.append({
                "message_id": "%s-%s-%d" % (run_id, identifier, n),
                "metric": args.metric,
                "quantity": str(quantity),
                "timestamp": (start + step * n).isoformat().replace("+00:00", "Z"),
            })
            expected["sum"] += quantity
            per = expected["per_device"].setdefault(identifier, {"count": 0, "sum": Decimal(0)})
            per["count"] += 1
            per["sum"] += quantity
        expected["distinct"] += len(readings)
        topic = "%siot/%s/usage" % (args.prefix.strip("/") + "/" if args.prefix.strip("/") else "", identifier)
        for offset in range(0, len(readings), args.batch):
            chunk = readings[offset:offset + args.batch]
            body = chunk[0] if args.batch == 1 else chunk
            messages.append((topic, json.dumps(body).encode(), "reading", chunk[0]))
    out = []
    for topic, payload, kind, first in messages:
        out.append((topic, payload, kind))
        if rng.random() < args.duplicates:
            out.append((topic, payload, "duplicate"))
            expected["duplicates"] += 1
        if rng.random() < args.malformed:
            bad = dict(first, message_id=first["message_id"] + "-bad")
            out.append((topic, MALFORMED[expected["malformed"] % len(MALFORMED)](bad), "malformed"))
            expected["malformed"] += 1
    expected["sum"] = str(expected["sum"])
    for per in expected["per_device"].values():
        per["sum"] = str(per["sum"])
    return out, expected


def register(args, identifiers):
    from .odoo_client import OdooClient

    client = OdooClient(args.odoo_url, args.odoo_db, args.odoo_login, args.odoo_password)
    for start in range(0, len(identifiers), 10000):
        client.execute("iot_billing.device", "api_register",
                       [{"identifier": i} for i in identifiers[start:start + 10000]])


def publish(args, messages):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="iot-sim-" + uuid.uuid4().hex[:8])
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(args.host, args.port, 30)
    client.loop_start()
    started = time.monotonic()
    pending = collections.deque()
    unconfirmed = 0
    try:
        for index, (topic, payload, _kind) in enumerate(messages):
            if args.rate:
                delay = started + index / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            # MQTT message ids are 16-bit: paho refuses a publish whose id is still
            # unacknowledged, so the window of unconfirmed publishes stays well below 65,535.
            while len(pending) >= MAX_UNCONFIRMED:
                unconfirmed += not _confirmed(pending.popleft())
            info = client.publish(topic, payload, qos=args.qos)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError("publish %d refused by the MQTT client: %s" % (index, mqtt.error_string(info.rc)))
            pending.append(info)
        while pending:
            unconfirmed += not _confirmed(pending.popleft())
    finally:
        client.disconnect()
        client.loop_stop()
    return time.monotonic() - started, unconfirmed


def _confirmed(info):
    info.wait_for_publish(timeout=60)
    return info.is_published()


def main(argv=None):
    args = build_parser().parse_args(argv)
    rng = random.Random(args.seed)
    messages, expected = generate(args, rng)
    if args.register:
        register(args, expected["identifiers"])
    elapsed, unconfirmed = publish(args, messages)
    expected["published_messages"] = len(messages)
    expected["unconfirmed"] = unconfirmed
    expected["seconds"] = round(elapsed, 3)
    expected["messages_per_second"] = round(len(messages) / elapsed, 1) if elapsed else None
    if len(expected["identifiers"]) > 20:
        expected["identifiers"] = expected["identifiers"][:20] + ["..."]
        expected.pop("per_device")
    json.dump(expected, sys.stdout, indent=1)
    print()
    return 1 if unconfirmed else 0


if __name__ == "__main__":
    sys.exit(main())
