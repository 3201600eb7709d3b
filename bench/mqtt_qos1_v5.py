#!/usr/bin/env python3
"""Measure QoS 1 end-to-end throughput, MQTT 3.1.1 vs 5, auto vs manual acks.

    python3 bench/mqtt_qos1_v5.py [--port 1883] [--count 20000] [--cases all]

One publisher and one subscriber on the local broker; JSON payloads like the
bridge receives. Prints one line per case: messages/s seen by the subscriber.
"""

import argparse
import json
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

CASES = {
    # name: (subscriber protocol, publisher protocol, manual_ack, receive_maximum, pub inflight)
    "v311_auto": (mqtt.MQTTv311, mqtt.MQTTv311, False, None, 20),
    "v311_manual": (mqtt.MQTTv311, mqtt.MQTTv311, True, None, 20),
    "v5_auto": (mqtt.MQTTv5, mqtt.MQTTv5, False, None, 20),
    "v5_manual": (mqtt.MQTTv5, mqtt.MQTTv5, True, None, 20),
    "v5_sub_v311_pub": (mqtt.MQTTv5, mqtt.MQTTv311, False, None, 20),
    "v311_sub_v5_pub": (mqtt.MQTTv311, mqtt.MQTTv5, False, None, 20),
    "v5_pub_inflight1000": (mqtt.MQTTv5, mqtt.MQTTv5, False, None, 1000),
    "v5_recvmax1000_inflight1000": (mqtt.MQTTv5, mqtt.MQTTv5, True, 1000, 1000),
    "v5_recvmax20": (mqtt.MQTTv5, mqtt.MQTTv5, False, 20, 20),
    "v5_recvmax100_manual": (mqtt.MQTTv5, mqtt.MQTTv5, True, 100, 20),
}


def _connect(client, port, protocol, clean, receive_maximum=None):
    if protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if clean else 3600
        if receive_maximum:
            props.ReceiveMaximum = receive_maximum
        client.connect("127.0.0.1", port, keepalive=30, clean_start=clean, properties=props)
    else:
        client.connect("127.0.0.1", port, keepalive=30)


def run_case(name, port, count, args_timeout=30):
    sub_proto, pub_proto, manual, recv_max, pub_inflight = CASES[name]
    topic = "bench/%s/%s" % (name, uuid.uuid4().hex[:8])
    received = 0
    last = [time.monotonic()]
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client, userdata, message):
        nonlocal received
        json.loads(message.payload)
        received += 1
        last[0] = time.monotonic()
        if manual:
            client.ack(message.mid, message.qos)
        if received >= count:
            done.set()

    sub = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub-" + name,
        protocol=sub_proto, manual_ack=manual,
        **({"clean_session": True} if sub_proto != mqtt.MQTTv5 else {}),
    )
    sub.on_message = on_message
    sub.on_subscribe = lambda *a: subscribed.set()
    _connect(sub, port, sub_proto, True, recv_max)
    sub.loop_start()
    sub.subscribe(topic, qos=1)
    subscribed.wait(5)

    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub-" + name, protocol=pub_proto)
    pub.max_inflight_messages_set(pub_inflight)
    pub.max_queued_messages_set(0)
    _connect(pub, port, pub_proto, True)
    pub.loop_start()
    payload = json.dumps({"message_id": "x" * 20, "metric": "kwh", "quantity": 1.5,
                          "timestamp": "2026-11-22T10:00:00Z"})
    start = time.monotonic()
    for _ in range(count):
        pub.publish(topic, payload, qos=1)
    # stop when all arrived, or nothing arrived for 3 s (the broker dropped the rest)
    deadline = time.monotonic() + args_timeout
    while not done.wait(0.2) and time.monotonic() < deadline and time.monotonic() - last[0] < 3:
        pass
    ok = received >= count
    elapsed = last[0] - start
    pub.loop_stop()
    pub.disconnect()
    sub.loop_stop()
    sub.disconnect()
    rate = received / elapsed if elapsed else 0
    print("%-30s %6d/%d msgs in %6.2f s  %8.0f msg/s%s" % (
        name, received, count, elapsed, rate, "" if ok else "  LOST %d" % (count - received)))
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--cases", default="all")
    args = parser.parse_args()
    names = list(CASES) if args.cases == "all" else args.cases.split(",")
    for name in names:
        run_case(name, args.port, args.count)


if __name__ == "__main__":
    main()
