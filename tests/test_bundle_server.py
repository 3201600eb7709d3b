"""Bundles end to end: a real Odoo server (the demo database) and a private Mosquitto.

A camera is activated on a bundle plan: it receives a retained ``apply_preset`` with the plan's
and its default options' settings merged. An option is added to its contract item over RPC: a
new version with the option's settings merged is received by a real MQTT subscriber; the
platform acknowledges it through ``api_ack_preset`` as the Integration user, and a late
subscriber still receives the last preset, retained. The broker retains one command per device,
the last: a device connecting after a block still learns its preset, and after a preset sent
while it is blocked still learns it is blocked.
"""

import json
import threading
import uuid
from datetime import date

import paho.mqtt.client as mqtt
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, wait_until


class PresetSubscriber:
    """Collects the commands published to one device's topic: (command, payload, retained)."""

    def __init__(self, broker, identifier):
        self.received = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe("iot/%s/commands" % identifier, 1)
        assert subscribed.wait(5)

    def _on_message(self, client, userdata, message):
        body = json.loads(message.payload)
        self.received.append((body["command"], body["payload"], bool(message.retain)))

    def presets(self):
        return [(payload, retained) for command, payload, retained in list(self.received) if command == "apply_preset"]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _bundle(rpc, tag):
    """Three typed settings, two options (one by default) and a pure bundle plan (price 0)."""
    settings = {
        code: rpc("iot.bundle.setting", "create", {"name": code, "code": "%s_%s" % (code, tag), **extra})
        for code, extra in (("days", {}), ("faces", {"value_type": "boolean"}),
                            ("quality", {"value_type": "choice", "choices": "low,medium,high"}))
    }

    def option(name, price, values):
        return rpc("product.product", "create", {
            "name": "%s %s" % (name, tag), "default_code": "%s-%s" % (name.upper(), tag), "type": "service",
            "list_price": price, "iot_is_service_option": True, "taxes_id": [(6, 0, [])],
            "iot_setting_value_ids": [(0, 0, {"setting_id": settings[code], "value": value})
                                      for code, value in values.items()]})

    recording = option("Recording", 6.0, {"days": "7"})
    faces = option("Faces", 4.5, {"faces": "true"})
    rpc("product.product", "create", {
        "name": "Camera bundle " + tag, "default_code": "CAM-" + tag, "type": "service", "list_price": 0.0,
        "iot_is_plan": True, "iot_is_bundle": True, "taxes_id": [(6, 0, [])],
        "iot_bundle_option_ids": [(6, 0, [recording, faces])], "iot_bundle_default_option_ids": [(6, 0, [recording])],
        "iot_setting_value_ids": [(0, 0, {"setting_id": settings["quality"], "value": "medium"}),
                                  (0, 0, {"setting_id": settings["faces"], "value": "false"})]})
    return faces


def test_option_added_sends_merged_preset_then_acknowledged(odoo_server, broker):
    rpc = odoo_server.rpc
    tag = uuid.uuid4().hex[:6].upper()
    faces = _bundle(rpc, tag)
    partner = rpc("res.partner", "create", {"name": "Camera customer " + tag})
    rpc("iot.contract", "create", {"name": "Cameras " + tag, "reference": "CAMS-" + tag,
                                   "partner_id": partner})
    identifier = "CAM%s-1" % tag
    integration = {"login": BRIDGE_LOGIN, "password": BRIDGE_KEY}
    rpc("iot_billing.device", "api_register", [{"identifier": identifier, "partner": partner}], **integration)
    subscriber = PresetSubscriber(broker, identifier)
    try:
        activated = rpc("iot_billing.device", "api_activate", [{
            "identifier": identifier, "contract": "CAMS-" + tag, "plan": "CAM-" + tag,
            "date_start": date.today().replace(day=1).isoformat()}], **integration)
        assert "error" not in activated[0], activated
        first = {"days_" + tag: 7, "faces_" + tag: False, "quality_" + tag: "medium"}
        wait_until(lambda: len(subscriber.presets()) == 1, 20, message="first preset")
        assert subscriber.presets()[0][0] == {"version": 1, "settings": first, "blocked": False}

        item = activated[0]["contract_item_id"]
        rpc("iot.contract.item", "write", [item], {"iot_option_ids": [(0, 0, {"product_id": faces})]})
        merged = dict(first, **{"faces_" + tag: True})
        wait_until(lambda: len(subscriber.presets()) == 2, 20, message="preset of the option added")
        assert subscriber.presets()[1][0] == {"version": 2, "settings": merged, "blocked": False}
        assert [command for command, _payload, _retained in subscriber.received] == ["apply_preset"] * 2
    finally:
        subscriber.close()

    # The fee follows the options: 6.00 + 4.50 a month.
    fee = rpc("iot.contract.item", "read", [item], ["iot_fee_total"])[0]["iot_fee_total"]
    assert fee == 10.5
    # The command was stored, published and marked sent after commit.
    commands = rpc("iot_billing.device.command", "search_read",
                   [("device_id.identifier", "=", identifier), ("command", "=", "apply_preset")],
                   ["state", "payload"], order="id")
    assert [(c["state"], json.loads(c["payload"])["version"]) for c in commands] == [("sent", 1), ("sent", 2)]

    answers = rpc("iot_billing.device", "api_ack_preset",
                  [{"identifier": identifier, "version": 2}, {"identifier": identifier, "version": 3}], **integration)
    assert answers[0]["version"] == 2 and answers[0]["current_version"] == 2 and answers[0]["acknowledged_at"]
    assert answers[1] == {"identifier": identifier, "error": "device %r has no preset version 3" % identifier}
    presets = rpc("iot.contract.item.preset", "search_read", [("device_id.identifier", "=", identifier)],
                  ["version", "acknowledged_at", "is_current", "settings"], order="version")
    assert [(p["version"], bool(p["acknowledged_at"]), p["is_current"]) for p in presets] == [
        (1, False, False), (2, True, True)]
    assert presets[1]["settings"] == merged
    waiting = rpc("iot.contract.item.preset", "search_count",
                  [("device_id.identifier", "=", identifier), ("is_current", "=", True),
                   ("acknowledged_at", "=", False)])
    assert waiting == 0

    # A device connecting later receives the last preset, retained by the broker.
    late = PresetSubscriber(broker, identifier)
    try:
        wait_until(lambda: late.presets(), 10, message="retained preset")
        assert late.presets() == [({"version": 2, "settings": merged, "blocked": False}, True)]
    finally:
        late.close()


def _retained_command(broker, identifier):
    """What a device connecting now receives first: the retained command of its topic."""
    late = PresetSubscriber(broker, identifier)
    try:
        wait_until(lambda: late.received, 10, message="retained command")
        assert len(late.received) == 1 and late.received[0][2], late.received
        return late.received[0][:2]
    finally:
        late.close()


def _wait_all_sent(rpc, identifier, count):
    def sent():
        states = rpc("iot_billing.device.command", "search_read", [("device_id.identifier", "=", identifier)],
                     ["state"])
        return len(states) == count and all(state["state"] == "sent" for state in states)
    wait_until(sent, 20, message="%d commands sent" % count)


def test_retained_command_carries_block_and_preset(odoo_server, broker):
    rpc = odoo_server.rpc
    tag = uuid.uuid4().hex[:6].upper()
    faces = _bundle(rpc, tag)
    partner = rpc("res.partner", "create", {"name": "Camera customer " + tag})
    rpc("iot.contract", "create", {"name": "Cameras " + tag, "reference": "CAMS-" + tag, "partner_id": partner})
    identifier = "CAM%s-2" % tag
    integration = {"login": BRIDGE_LOGIN, "password": BRIDGE_KEY}
    rpc("iot_billing.device", "api_register", [{"identifier": identifier, "partner": partner}], **integration)
    first_day = date.today().replace(day=1)
    activated = rpc("iot_billing.device", "api_activate", [{
        "identifier": identifier, "contract": "CAMS-" + tag, "plan": "CAM-" + tag,
        "date_start": first_day.isoformat()}], **integration)
    assert "error" not in activated[0], activated
    first = {"days_" + tag: 7, "faces_" + tag: False, "quality_" + tag: "medium"}

    # Blocked after its preset: the retained block still carries the preset.
    suspended = rpc("iot_billing.device", "api_suspend", [{"identifier": identifier, "date": date.today().isoformat()}],
                    **integration)
    assert "error" not in suspended[0], suspended
    _wait_all_sent(rpc, identifier, 2)
    assert _retained_command(broker, identifier) == ("block", {"preset": {"version": 1, "settings": first}})

    # A preset sent while it is blocked: the retained preset says so.
    item = activated[0]["contract_item_id"]
    rpc("iot.contract.item", "write", [item], {"iot_option_ids": [(0, 0, {"product_id": faces})]})
    _wait_all_sent(rpc, identifier, 3)
    merged = dict(first, **{"faces_" + tag: True})
    assert _retained_command(broker, identifier) == (
        "apply_preset", {"version": 2, "settings": merged, "blocked": True})

    # Unblocked: the retained unblock carries the preset in force.
    resumed = rpc("iot_billing.device", "api_resume", [{"identifier": identifier, "date": date.today().isoformat()}],
                  **integration)
    assert "error" not in resumed[0], resumed
    _wait_all_sent(rpc, identifier, 4)
    assert _retained_command(broker, identifier) == ("unblock", {"preset": {"version": 2, "settings": merged}})
