import os
from unittest.mock import patch

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
        Command = self.env["iot.device.command"]
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
        self.env["iot.device.command"]._cron_publish_pending()
        self.assertEqual(set(commands.mapped("state")), {"failed"})
        self.assertEqual(set(commands.mapped("attempts")), {1})
        self.assertIn("cannot publish to MQTT broker 127.0.0.1:1", commands[0].last_error)
        self.env["iot.device.command"]._cron_publish_pending()
        self.assertEqual(set(commands.mapped("attempts")), {2}, "the cron retries failed commands")
