"""Two branded tenants on one Odoo and one broker (the demo's main company and Vigil Cloud, whose
downlink prefix is ``vigil``): each tenant's commands reach only its own topics, and the platform
of one tenant cannot act on the other's devices."""

import json
import threading
import uuid

import paho.mqtt.client as mqtt
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, wait_until

VIGIL_DEVICE = "VIGIL-CAM-001"


class TopicListener:
    """Every message published under some topic filters, as (topic, command)."""

    def __init__(self, broker, filters):
        self.messages = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, message: self.messages.append(
            (message.topic, json.loads(message.payload)["command"]))
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe([(topic_filter, 1) for topic_filter in filters])
        assert subscribed.wait(5)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_each_tenant_on_its_own_topics(odoo_server, broker):
    rpc = odoo_server.rpc
    vigil = rpc("ir.model.data", "check_object_reference", "iot_white_label", "company_vigil_demo")[1]
    in_vigil = {"allowed_company_ids": [vigil]}
    device_b = rpc("iot_billing.device", "search", [("identifier", "=", VIGIL_DEVICE)], context=in_vigil)
    assert device_b, "the demo's second tenant has its camera"

    identifier_a = "WL-A-" + uuid.uuid4().hex[:8]
    integration = lambda method, entries: rpc(  # noqa: E731 - a local shorthand
        "iot_billing.device", method, entries, login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    integration("api_register", [{"identifier": identifier_a}])
    activated = integration("api_activate", [{"identifier": identifier_a, "contract": "IOT-FLEET-001",
                                              "plan": "PREMIUM-FLEET"}])
    assert activated[0]["state"] == "active", activated
    # The main company's platform does not know the other tenant's devices.
    refused = integration("api_suspend", [{"identifier": VIGIL_DEVICE}])
    assert refused == [{"identifier": VIGIL_DEVICE, "error": "unknown device %r" % VIGIL_DEVICE}]

    tenant_a = TopicListener(broker, ["iot/#"])
    tenant_b = TopicListener(broker, ["vigil/#"])
    try:
        integration("api_suspend", [{"identifier": identifier_a}])
        rpc("iot_billing.device", "action_suspend", device_b, context=in_vigil)
        wait_until(lambda: ("iot/%s/commands" % identifier_a, "block") in tenant_a.messages, 20,
                   message="tenant A's block")
        wait_until(lambda: ("vigil/iot/%s/commands" % VIGIL_DEVICE, "block") in tenant_b.messages, 20,
                   message="tenant B's block")
        assert all(VIGIL_DEVICE not in topic for topic, _command in tenant_a.messages)
        assert all(topic.startswith("vigil/iot/%s/" % VIGIL_DEVICE) for topic, _command in tenant_b.messages)
    finally:
        rpc("iot_billing.device", "action_resume", device_b, context=in_vigil)
        tenant_a.close()
        tenant_b.close()
