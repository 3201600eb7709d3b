#!/usr/bin/env python3
"""Where the time goes on the MQTT path: simulator -> Mosquitto -> bridge -> Odoo -> PostgreSQL.

    python3 bench/mqtt_profile.py [--db bridge_demo] [--devices 20] [--readings 50000] [--batch 50]
                                  [--bridge-batch 1000] [--bridges 1] [--py-spy]

Runs one gateway-payload load (``--batch`` readings per message) through a private broker, a
real Odoo server (default limits) and the bridge(s), and records during the run:
- CPU seconds of every process of the path (/proc: simulator, broker, bridges, Odoo, the
  PostgreSQL backends serving the Odoo database), per million readings;
- what the Odoo database connections were doing, sampled every 20 ms from pg_stat_activity
  (running the INSERT, another statement, idle in transaction = Odoo's Python, idle = waiting
  for the bridge);
- the broker's own counters from its ``$SYS`` topics;
- with ``--py-spy``, the hottest functions of the bridge and of Odoo (py-spy samples, self and
  inclusive shares; py-spy must be installed).
Then checks with SQL that every reading was stored once with the quantities sent.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from decimal import Decimal

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))

from bridge_fixtures import (  # noqa: E402
    BridgeProcess,
    Broker,
    OdooServer,
    simulate_async,
    sql,
    usage_counts,
    wait_until,
)

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def backend_pids(db):
    return [row[0] for row in sql(db, "SELECT pid FROM pg_stat_activity WHERE datname = %s "
                                      "AND application_name LIKE 'odoo-%%'", (db,))]


class ActivitySampler(threading.Thread):
    """pg_stat_activity of the Odoo database's connections, every ``interval`` seconds."""

    def __init__(self, db, interval=0.02):
        super().__init__(daemon=True)
        self.db, self.interval = db, interval
        self.counts = collections.Counter()
        self.stopping = threading.Event()
        self.pids = set()

    def run(self):
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", user="root", dbname=self.db)
        connection.autocommit = True
        with connection.cursor() as cursor:
            while not self.stopping.is_set():
                cursor.execute("""SELECT pid, state, wait_event_type, wait_event, left(query, 200)
                                    FROM pg_stat_activity
                                   WHERE datname = %s AND application_name LIKE 'odoo-%%'""", (self.db,))
                for pid, state, wait_type, wait_event, query in cursor.fetchall():
                    self.pids.add(pid)
                    if state == "active":
                        # the ingestion statement, with or without its bucket CTE around it
                        kind = "INSERT INTO iot_usage" if "INSERT INTO iot_usage" in query else query.split()[0]
                        label = "active: %s%s" % (kind, " (waiting %s/%s)" % (wait_type, wait_event)
                                                  if wait_type and wait_type != "Client" else "")
                    else:
                        label = state
                    self.counts[label] += 1
                time.sleep(self.interval)
        connection.close()


class SysTopics:
    """The broker's $SYS counters, last value of each."""

    def __init__(self, port):
        self.values = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sys-" + uuid.uuid4().hex[:6])
        self.client.on_message = lambda _c, _u, message: self.values.__setitem__(
            message.topic, message.payload.decode())
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("$SYS/broker/#")
        self.client.loop_start()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def py_spy(pid, seconds, path):
    return subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)),
                             "--rate", "50", "--format", "raw", "--output", path, "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hottest(path, top=14):
    """(self share, inclusive share) of the hottest functions in a py-spy raw (collapsed) file."""
    own, inclusive, total = collections.Counter(), collections.Counter(), 0
    with open(path) as handle:
        for line in handle:
            stack, _, count = line.rstrip().rpartition(" ")
            count = int(count)
            frames = [frame.split(" (")[0] + " (" + frame.split(" (")[1].split(":")[0].rsplit("/", 1)[-1]
                      if " (" in frame else frame for frame in stack.split(";")[1:]]
            total += count
            if frames:
                own[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    return total, own.most_common(top), inclusive.most_common(top * 2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("IOT_SERVER_DB", "bridge_demo"))
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--readings", type=int, default=50000, help="readings per device")
    parser.add_argument("--batch", type=int, default=50, help="readings per MQTT message")
    parser.add_argument("--rate", type=float, default=0, help="messages per second (0 = as fast as possible)")
    parser.add_argument("--bridges", type=int, default=1)
    parser.add_argument("--bridge-setting", action="append", default=[], metavar="KEY=VALUE",
                        help="bridge configuration override, e.g. batch_size=1000 (repeatable)")
    parser.add_argument("--py-spy", action="store_true")
    args = parser.parse_args()
    overrides = {"batch_size": 1000, "stats_interval": 0.5}
    overrides.update(setting.split("=", 1) for setting in args.bridge_setting)
    if int(args.bridges) > 1:
        overrides.setdefault("mqtt_protocol", 5)
        overrides.setdefault("mqtt_shared_group", "profile")

    workdir = tempfile.mkdtemp(prefix="iot-mqtt-profile-")
    broker = Broker(workdir)
    broker.start()
    odoo = OdooServer(args.db, workdir)
    odoo.start()
    prefix = "P%s-" % uuid.uuid4().hex[:5]
    odoo.rpc("iot_billing.device", "api_register",
             [{"identifier": "%s%04d" % (prefix, n + 1)} for n in range(args.devices)],
             login="iot-bridge", password="iot-bridge-demo")
    bridges = []
    sys_topics = SysTopics(broker.port)
    try:
        for _ in range(args.bridges):
            bridge = BridgeProcess(workdir, broker, odoo, **overrides)
            bridge.start()
            bridges.append(bridge)
        expected_readings = args.devices * args.readings
        with open("/proc/loadavg") as handle:
            load_before = handle.read().split()[:3]
        processes = {"broker": [broker.process.pid], "odoo": [odoo.process.pid],
                     "bridge": [bridge.process.pid for bridge in bridges]}
        cpu_before = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in processes.items()}
        pg_before = {pid: cpu_seconds(pid) for pid in backend_pids(args.db)}
        sampler = ActivitySampler(args.db)
        sampler.start()
        start = time.monotonic()
        simulator = simulate_async(broker, "--device-prefix", prefix, "--devices", args.devices,
                                   "--readings", args.readings, "--batch", args.batch, "--run-id", prefix,
                                   "--rate", args.rate)
        spies = []
        if args.py_spy:
            estimate = max(10, expected_readings / 12000)
            spies = [py_spy(bridges[0].process.pid, estimate, os.path.join(workdir, "bridge.spy")),
                     py_spy(odoo.process.pid, estimate, os.path.join(workdir, "odoo.spy"))]
        simulator_cpu = 0.0
        while simulator.poll() is None:
            simulator_cpu = cpu_seconds(simulator.pid) or simulator_cpu
            time.sleep(0.2)
        out = json.loads(simulator.stdout.read())
        # The bridges' own counters (committed readings) say when to stop the clock: polling
        # PostgreSQL with the counting query below would load the database being measured.
        wait_until(lambda: sum(bridge.stat("forwarded") for bridge in bridges) >= out["distinct"], 3600,
                   interval=0.1, message="every reading forwarded")
        elapsed = time.monotonic() - start
        sampler.stopping.set()
        sampler.join()
        cpu = {name: sum(cpu_seconds(pid) for pid in pids) - cpu_before[name] for name, pids in processes.items()}
        cpu["simulator (approx.)"] = simulator_cpu
        cpu["postgres backends"] = sum(cpu_seconds(pid) - pg_before.get(pid, 0.0) for pid in sampler.pids)
        with open("/proc/loadavg") as handle:
            load_after = handle.read().split()[:3]
        calls = sum(bridge.stat("calls") for bridge in bridges)
        for spy in spies:
            spy.wait()
    finally:
        for bridge in bridges:
            bridge.stop()
        sys_topics.close()
        odoo.stop()
        broker.stop()

    stored, distinct, quantity_sum, rejected = usage_counts(args.db, prefix)
    assert stored == distinct == out["distinct"] and rejected == 0, (stored, distinct, rejected)
    assert Decimal(quantity_sum) == Decimal(out["sum"]), (quantity_sum, out["sum"])
    millions = out["distinct"] / 1e6
    print("%d readings in %d messages of %d, %d bridge(s) %s: published in %.1f s, all stored after %.1f s "
          "-> %.0f readings/s; stored once each, sum exact; %d Odoo calls (%.0f readings per call). "
          "Load average before %s, after %s"
          % (out["distinct"], out["published_messages"], args.batch, args.bridges, overrides, out["seconds"],
             elapsed, out["distinct"] / elapsed, calls, out["distinct"] / max(calls, 1), " ".join(load_before),
             " ".join(load_after)))
    print("\nCPU seconds during the run (wall %.1f s; 2 cores = %.0f core-seconds):" % (elapsed, 2 * elapsed))
    for name, seconds in sorted(cpu.items(), key=lambda item: -item[1]):
        print("  %-22s %7.1f s  %5.1f %% of the wall time  %6.1f s per million readings"
              % (name, seconds, 100 * seconds / elapsed, seconds / millions))
    total = sum(sampler.counts.values())
    print("\nOdoo database connections, %d samples of pg_stat_activity (every 20 ms):" % total)
    for label, count in sampler.counts.most_common():
        print("  %-60s %5.1f %%" % (label, 100 * count / total))
    print("\nBroker $SYS:")
    for key in ("messages/received", "messages/sent", "publish/messages/dropped", "store/messages/count",
                "load/messages/received/1min", "load/messages/sent/1min", "heap/current"):
        print("  %-32s %s" % (key, sys_topics.values.get("$SYS/broker/" + key, "?")))
    for name in ("bridge", "odoo") if args.py_spy else ():
        path = os.path.join(workdir, name + ".spy")
        if not os.path.exists(path):
            print("\npy-spy %s: no samples" % name)
            continue
        total, own, inclusive = hottest(path)
        print("\npy-spy %s: %d samples of non-idle threads; self time:" % (name, total))
        for frame, count in own:
            print("  %5.1f %%  %s" % (100 * count / total, frame))
        print(" inclusive:")
        for frame, count in inclusive:
            print("  %5.1f %%  %s" % (100 * count / total, frame))


if __name__ == "__main__":
    main()
