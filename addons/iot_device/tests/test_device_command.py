import json
import os
import threading
import time
import uuid
from unittest.mock import patch

import paho.mqtt.client as mqtt

from odoo.tests import tagged

from .common import IotDeviceCommon


@tagged("post_install", "-at_install")
class TestDeviceCommand(IotDeviceCommon):
    def test_suspend_resume_terminate_queue_commands(self):
        device = self.Device.create({"name": "CMD-1", "identifier": "CMD-1"})
        device.action_confirm()
        device.action_activate()
        self.assertFalse(device.command_ids, "activation sends nothing")
        device.action_suspend()
        device.action_resume()
        device.action_terminate()
        commands = device.command_ids.sorted("id")
        self.assertEqual(commands.mapped("command"), ["block", "unblock", "block"])
        self.assertEqual(set(commands.mapped("topic")), {"iot/CMD-1/commands"})
        self.assertEqual(set(commands.mapped("state")), {"pending"}, "published only after commit")

    def test_broker_from_parameters_then_environment(self):
        Command = self.env["iot_billing.device.command"]
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("iot_device.mqtt_host", False)
        params.set_param("iot_device.mqtt_port", False)
        with patch.dict(os.environ, {"IOT_MQTT_HOST": "mosquitto", "IOT_MQTT_PORT": "1884"}):
            self.assertEqual(Command._mqtt_broker(), ("mosquitto", 1884))
        params.set_param("iot_device.mqtt_host", "broker.example.com")
        with patch.dict(os.environ, {"IOT_MQTT_HOST": "mosquitto"}):
            self.assertEqual(Command._mqtt_broker()[0], "broker.example.com")

    def test_cron_records_each_failed_attempt(self):
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("iot_device.mqtt_host", "127.0.0.1")
        params.set_param("iot_device.mqtt_port", "1")  # nothing listens there
        devices = self.Device.create([{"name": "CRON-%d" % n, "identifier": "CRON-%d" % n} for n in range(3)])
        devices.action_confirm()
        devices.action_activate()
        devices.action_suspend()
        commands = devices.command_ids
        self.env["iot_billing.device.command"]._cron_publish_pending()
        self.assertEqual(set(commands.mapped("state")), {"failed"})
        self.assertEqual(set(commands.mapped("attempts")), {1})
        self.assertIn("cannot publish to MQTT broker 127.0.0.1:1", commands[0].last_error)
        self.env["iot_billing.device.command"]._cron_publish_pending()
        self.assertEqual(set(commands.mapped("attempts")), {2}, "the cron retries failed commands")

    def test_fleet_command_published_in_windows(self):
        """More commands than the publish window: every one reaches the broker, in order."""
        params = self.env["ir.config_parameter"].sudo()
        params.set_param("iot_device.mqtt_host", os.environ.get("IOT_MQTT_HOST", "127.0.0.1"))
        params.set_param("iot_device.mqtt_port", os.environ.get("IOT_MQTT_PORT", "1883"))
        tag = uuid.uuid4().hex[:8]
        devices = self.Device.create(
            [{"name": "WIN-%d" % n, "identifier": "WIN-%s-%d" % (tag, n)} for n in range(5)]
        )
        devices.action_confirm()
        devices.action_activate()
        received = []
        subscribed = threading.Event()
        listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        listener.on_subscribe = lambda *args: subscribed.set()
        listener.on_message = lambda client, userdata, message: (
            message.topic.startswith("iot/WIN-%s-" % tag)
            and message.payload  # not the clearing of the retained messages below
            and received.append(json.loads(message.payload))
        )
        listener.connect(*self.env["iot_billing.device.command"]._mqtt_broker())
        listener.subscribe("iot/+/commands", qos=1)
        listener.loop_start()
        try:
            self.assertTrue(subscribed.wait(10))
            devices.action_suspend()
            commands = devices.command_ids
            with patch("odoo.addons.iot_device.models.iot_device_command.PUBLISH_WINDOW", 2):
                commands._publish()
            self.assertEqual(set(commands.mapped("state")), {"sent"})
            deadline = time.monotonic() + 10
            while len(received) < 5 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            for identifier in devices.mapped("identifier"):  # leave no retained message on the broker
                listener.publish("iot/%s/commands" % identifier, b"", qos=1, retain=True).wait_for_publish(5)
            listener.loop_stop()
            listener.disconnect()
        self.assertCountEqual([message["message_id"] for message in received], commands.mapped("message_id"))
        self.assertEqual({message["command"] for message in received}, {"block"})
