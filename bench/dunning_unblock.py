#!/usr/bin/env python3
"""Time from a payment registered over RPC to the 'unblock' received by the devices.

    python3 bench/dunning_unblock.py [--sizes 1,10000] [--db dun_bench]

For each size N, on a fresh copy of the benchmark database, a real Odoo server with
Odoo's default time limits and a private Mosquitto (docker/mosquitto.conf):
  - one contract of N devices, its first month invoiced (one posted invoice, overdue),
    a dunning policy that blocks at once; the contract's "Apply Dunning" over RPC
    blocks the N devices, and one MQTT subscriber (QoS 1, on the command topics)
    waits for the N 'block' messages;
  - measured: the register-payment wizard over RPC (create + action_create_payments,
    what an accountant's click sends), then until the subscriber has the N 'unblock'.
Baselines, same run: the same wizard paying an invoice outside the contract (the
payment's own cost), and the same devices suspended by hand then resumed by a
platform with api_resume over RPC (the plain life cycle, no invoice, no dunning)
until the N 'unblock' are received; ratio = payment->unblock / api_resume->unblock.
Target: <= 1 s for one device, <= 30 s for 10,000.
"""

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, timedelta

import paho.mqtt.client as mqtt
from benchlib import OdooServer, ensure_database, fresh_copy, machine, parser, print_table

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
from bridge_fixtures import Broker  # noqa: E402 - the tests' private broker, with the project's configuration

BATCH = 10000


class Counter:
    """Counts the commands received per command name on the prefix's command topics."""

    def __init__(self, port, prefix):
        self.counts = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-" + uuid.uuid4().hex[:8])
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe("%s/iot/+/commands" % prefix, qos=1)
        assert subscribed.wait(10)

    def _on_message(self, client, userdata, message):
        if message.retain:  # a retained state from an earlier phase, not a new command
            return
        command = json.loads(message.payload)["command"]
        with self.lock:
            self.counts[command] = self.counts.get(command, 0) + 1

    def reset(self):
        with self.lock:
            self.counts = {}

    def wait(self, command, expected, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.counts.get(command, 0) >= expected:
                    return time.monotonic()
            time.sleep(0.002)
        raise RuntimeError("%d/%d %r received after %ss" % (self.counts.get(command, 0), expected, command, timeout))

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def month_start(day, months_back):
    for _ in range(months_back):
        day = day.replace(day=1) - timedelta(days=1)
    return day.replace(day=1)


def setup(client, size, broker_port, prefix):
    for key, value in (("iot_device.mqtt_host", "127.0.0.1"), ("iot_device.mqtt_port", str(broker_port)),
                       ("iot_device.mqtt_topic_prefix", prefix)):
        client("ir.config_parameter", "set_param", key, value)
    start, month_end = month_start(date.today(), 3), month_start(date.today(), 2) - timedelta(days=1)
    partner = client("res.partner", "create", {"name": "Bench customer"})
    client("product.product", "create", {"name": "Bench plan", "default_code": "BENCH-DUN", "type": "service",
                                         "list_price": 10.0, "iot_is_plan": True, "iot_duration_months": 12})
    policy = client("iot.dunning.policy", "create", {
        "name": "Bench", "level_ids": [(0, 0, {"name": "Block", "days_after_due": 0, "block": True})]})
    contract = client("iot.contract", "create", {"name": "Bench", "reference": "BENCH-DUN", "partner_id": partner,
                                                 "iot_dunning_policy_id": policy})
    # Immediate payment: due on the invoice date (without a term, Odoo makes it due the day it is created).
    term = client("ir.model.data", "check_object_reference", "account", "account_payment_term_immediate")[1]
    client("iot.contract", "write", [contract], {"state": "running", "payment_term_id": term})
    identifiers = ["B%06d" % n for n in range(size)]
    for begin in range(0, size, BATCH):
        batch = identifiers[begin:begin + BATCH]
        client("iot_billing.device", "api_register", [{"identifier": i} for i in batch])
        result = client("iot_billing.device", "api_activate", [
            {"identifier": i, "contract": "BENCH-DUN", "plan": "BENCH-DUN", "date_start": start.isoformat()}
            for i in batch])
        assert not [entry for entry in result if "error" in entry], result[:3]
    run = client("iot.billing.run", "api_run", month_end.isoformat())
    assert len(run["invoice_ids"]) == 1, run
    return contract, run["invoice_ids"][0], identifiers


def plain_invoice(client, contract):
    """A posted invoice of the same customer and amount outside the contract: nothing to unblock."""
    [values] = client("iot.contract", "read", [contract], ["partner_id", "payment_term_id"])
    partner, term = values["partner_id"][0], values["payment_term_id"][0]
    product = client("product.product", "search", [("default_code", "=", "BENCH-DUN")])[0]
    invoice = client("account.move", "create", {
        "move_type": "out_invoice", "partner_id": partner, "invoice_payment_term_id": term,
        "invoice_line_ids": [(0, 0, {"product_id": product, "quantity": 1})]})
    client("account.move", "action_post", [invoice])
    return invoice


def pay(client, invoice):
    """The register-payment wizard over RPC, as the button sends it; returns its seconds."""
    context = {"active_model": "account.move", "active_ids": [invoice]}
    began = time.monotonic()
    wizard = client("account.payment.register", "create", {}, context=context)
    client("account.payment.register", "action_create_payments", [wizard], context=context)
    return time.monotonic() - began


def scenario(args, size):
    db = fresh_copy(args.db, args.db + "_run")
    prefix = "bench" + uuid.uuid4().hex[:6]
    with tempfile.TemporaryDirectory(prefix="dunning-bench-") as workdir:
        broker = Broker(workdir)
        broker.start()
        try:
            with OdooServer(db, log_path=os.path.join(workdir, "odoo.log")) as server:
                client = server.client()
                contract, invoice, identifiers = setup(client, size, broker.port, prefix)
                counter = Counter(broker.port, prefix)
                try:
                    payment_alone = pay(client, plain_invoice(client, contract))
                    began = time.monotonic()
                    client("iot.contract", "action_iot_dunning_evaluate", [contract])
                    blocked = counter.wait("block", size) - began

                    counter.reset()
                    began = time.monotonic()
                    rpc_done = pay(client, invoice)
                    unblocked = counter.wait("unblock", size) - began
                    active = client("iot_billing.device", "search_count",
                                    [("identifier", "in", identifiers), ("state", "=", "active")])
                    assert active == size, active

                    # Baseline: the same devices suspended by hand, resumed by a platform.
                    for begin in range(0, size, BATCH):
                        client("iot_billing.device", "api_suspend", [{"identifier": i}
                                                                     for i in identifiers[begin:begin + BATCH]])
                    counter.wait("block", size)
                    counter.reset()
                    began = time.monotonic()
                    for begin in range(0, size, BATCH):
                        client("iot_billing.device", "api_resume", [{"identifier": i}
                                                                    for i in identifiers[begin:begin + BATCH]])
                    baseline = counter.wait("unblock", size) - began
                finally:
                    counter.close()
        finally:
            broker.stop()
    return [size, "%.2f" % blocked, "%.2f" % payment_alone, "%.2f" % rpc_done, "%.2f" % unblocked,
            "%.2f" % baseline, "%.2f" % (unblocked / baseline)]


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--sizes", default="1,10000", help="blocked devices of one contract")
    args = args.parse_args()
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine())
    rows = [scenario(args, int(size)) for size in args.sizes.split(",")]
    print_table("Payment over RPC -> 'unblock' received over MQTT (seconds)",
                ["devices", "block all s", "payment alone s", "payment RPC s", "payment->unblock s",
                 "api_resume->unblock s", "ratio"], rows)


if __name__ == "__main__":
    main()
