#!/usr/bin/env python3
"""End-to-end bridge throughput: simulator -> Mosquitto (docker/mosquitto.conf) -> bridge -> Odoo.

    python3 bench/bridge_throughput.py [--db bridge_demo] [--devices 20] [--readings 1000] [--batch 1]
                                       [--rate 3300] [--cases "3.1.1 x1"] [--paho-ceiling]
                                       [--bridge-setting batch_size_max=1000 ...]

Starts a private broker and an Odoo server on the database (four modules installed,
demo user iot-bridge), then for 3.1.1 x1, v5 x1 and v5 shared x2 bridges (x3 on request) measures the
time until every reading is stored, and checks with SQL that each was stored once
with the quantities sent (zero loss, zero double count).

Without ``--rate`` the simulator publishes as fast as it can (the pipeline's ceiling);
with ``--rate`` it publishes at that pace, and the run is sustained when the readings
are all stored within seconds of the last publish (the lag printed), not minutes.
"""

import argparse
import os
import sys
import tempfile
import time
import uuid
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from bridge_fixtures import BridgeProcess, Broker, OdooServer, simulate, usage_counts, wait_until  # noqa: E402

CASES = [
    ("3.1.1 x1", 1, {}),
    ("v5 x1", 1, {"mqtt_protocol": 5}),
    ("v5 shared x2", 2, {"mqtt_protocol": 5, "mqtt_shared_group": "bench"}),
    ("v5 shared x3", 3, {"mqtt_protocol": 5, "mqtt_shared_group": "bench"}),
]


def load_average():
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


def paho_ceiling(broker, args):
    """The same simulator into a bare paho subscriber (QoS 1, acknowledging each message at once
    as the bridge does after its commit): what MQTT and paho alone carry on this machine, without
    the bridge and Odoo."""
    import threading

    import paho.mqtt.client as mqtt

    received, done, subscribed = [0], threading.Event(), threading.Event()
    expected = args.devices * args.readings // args.batch

    def on_message(client, _userdata, message):
        client.ack(message.mid, message.qos)
        received[0] += 1
        if received[0] >= expected:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="paho-ceiling-" + uuid.uuid4().hex[:6],
                         clean_session=True, manual_ack=True)
    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect("127.0.0.1", broker.port)
    client.subscribe("iot/+/usage", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        load = load_average()
        start = time.monotonic()
        out = simulate(broker, "--device-prefix", "PAHO-", "--devices", args.devices, "--readings", args.readings,
                       "--batch", args.batch, "--rate", args.rate, timeout=7200)
        published = time.monotonic() - start
        assert done.wait(1800), "paho received %d of %d messages" % (received[0], expected)
        total = time.monotonic() - start
    finally:
        client.disconnect()
        client.loop_stop()
    print("%-13s %d messages: published in %.1f s (%.0f messages/s), all received %.1f s after the last publish "
          "-> %.0f messages/s end to end; load %s before, %s after"
          % ("bare paho", out["published_messages"], out["seconds"], out["messages_per_second"], total - published,
             out["published_messages"] / (out["seconds"] + total - published), load, load_average()), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("IOT_SERVER_DB", "bridge_demo"))
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--readings", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1, help="readings per MQTT message")
    parser.add_argument("--rate", type=float, default=0, help="messages per second (0 = as fast as possible)")
    parser.add_argument("--cases", default=",".join(label for label, _c, _o in CASES[:3]),
                        help="comma-separated subset of: %s" % ", ".join(label for label, _c, _o in CASES))
    parser.add_argument("--paho-ceiling", action="store_true",
                        help="first, the same simulator into a bare paho subscriber (no bridge, no Odoo)")
    parser.add_argument("--bridge-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="bridge configuration, e.g. batch_size_max=1000 (repeatable)")
    args = parser.parse_args()
    settings = {"stats_interval": 0.5, "batch_size": 1000}
    settings.update(setting.split("=", 1) for setting in args.bridge_setting)
    workdir = tempfile.mkdtemp(prefix="iot-bridge-bench-")
    broker = Broker(workdir)
    broker.start()
    odoo = OdooServer(args.db, workdir)
    odoo.start()
    try:
        if args.paho_ceiling:
            paho_ceiling(broker, args)
        for label, count, overrides in [case for case in CASES if case[0] in args.cases.split(",")]:
            prefix = "T%s-" % uuid.uuid4().hex[:5]
            odoo.rpc("iot_billing.device", "api_register",
                     [{"identifier": "%s%04d" % (prefix, n + 1)} for n in range(args.devices)],
                     login="iot-bridge", password="iot-bridge-demo")
            bridges = []
            try:
                if "mqtt_shared_group" in overrides:
                    # A group of its own per case: the sessions of a previous case's bridges stay
                    # subscribed (persistent, for a week) and would be handed their share.
                    overrides = dict(overrides, mqtt_shared_group="bench-" + prefix.strip("-"))
                for _ in range(count):
                    bridge = BridgeProcess(workdir, broker, odoo, **dict(settings, **overrides))
                    bridge.start()
                    bridges.append(bridge)
                load = load_average()
                start = time.monotonic()
                out = simulate(broker, "--device-prefix", prefix, "--devices", args.devices,
                               "--readings", args.readings, "--batch", args.batch, "--run-id", prefix,
                               "--rate", args.rate, timeout=7200)
                published = time.monotonic() - start
                # The bridges' counters of committed readings stop the clock; counting with SQL
                # while the run goes on would load the database being measured.
                wait_until(lambda out=out, bridges=bridges: sum(b.stat("forwarded") for b in bridges)
                           >= out["distinct"], 1800, interval=0.1)
                total = time.monotonic() - start
                stored, distinct, quantity_sum, rejected = usage_counts(args.db, prefix)
                assert out["unconfirmed"] == 0, "%d publishes not confirmed by the broker" % out["unconfirmed"]
                assert stored == distinct == out["distinct"] and rejected == 0, (stored, distinct, rejected)
                assert Decimal(quantity_sum) == Decimal(out["sum"]), (quantity_sum, out["sum"])
                # The simulator's own clock excludes its start-up and the building of the payloads.
                print("%-13s %d readings in %d messages: published in %.1f s (%.0f messages/s), all in Odoo "
                      "%.1f s after the last publish -> %.0f readings/s end to end; stored once each, sum %s "
                      "exact; %d Odoo calls; load %s before, %s after"
                      % (label, out["distinct"], out["published_messages"], out["seconds"],
                         out["messages_per_second"], total - published,
                         out["distinct"] / (out["seconds"] + total - published), quantity_sum,
                         sum(b.stat("calls") for b in bridges), load, load_average()), flush=True)
            finally:
                for bridge in bridges:
                    bridge.stop()
    finally:
        odoo.stop()
        broker.stop()


if __name__ == "__main__":
    main()
