"""Downlink: commands Odoo publishes to devices on ``iot/<identifier>/commands``.

A command is stored in this outbox in the same transaction as the state
change that causes it, and published over MQTT only after that transaction
commits (``cr.postcommit``), so a device is never blocked by a change that was
rolled back. A command that could not be published stays ``failed`` with its
error and is retried by a cron until ``MAX_ATTEMPTS``.
"""

import json
import logging
import os
import time
import uuid
from collections import defaultdict
from functools import partial

from odoo import SUPERUSER_ID, api, fields, models
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

try:
    import paho.mqtt.client as mqtt
except ImportError:  # declared in external_dependencies; keep the registry loadable
    mqtt = None

# life-cycle action -> command sent to the device
COMMAND_BY_ACTION = {"suspend": "block", "resume": "unblock", "terminate": "block"}
# State-like commands are retained by the broker: a device that connects later
# still learns whether it is blocked, and which preset it runs (iot_bundle).
RETAINED_COMMANDS = ("block", "unblock", "apply_preset")
MAX_ATTEMPTS = 10
PUBLISH_TIMEOUT = 5.0  # seconds to wait for a window's PUBACKs, plus 1 ms per command
PUBLISH_WINDOW = 10000  # publishes awaiting their PUBACK at a time


class IotDeviceCommand(models.Model):
    _name = "iot_billing.device.command"
    _description = "IoT Device Command"
    _order = "id desc"
    _check_company_auto = True
    _rec_name = "command"

    device_id = fields.Many2one(
        "iot_billing.device", required=True, ondelete="cascade", index=True, check_company=True
    )
    company_id = fields.Many2one(related="device_id.company_id", store=True, index=True)
    command = fields.Selection(
        [("block", "Block"), ("unblock", "Unblock"), ("apply_preset", "Apply preset")],
        required=True,
    )
    payload = fields.Text(help="JSON object sent with the command.")
    topic = fields.Char(required=True, help="MQTT topic, fixed when the command is created.")
    message_id = fields.Char(
        string="Message ID",
        required=True,
        copy=False,
        default=lambda self: uuid.uuid4().hex,
        help="Devices ignore a command whose message id they already executed.",
    )
    state = fields.Selection(
        [("pending", "Pending"), ("sent", "Sent"), ("failed", "Failed")],
        required=True,
        default="pending",
        index=True,
    )
    attempts = fields.Integer(readonly=True)
    last_error = fields.Char(readonly=True)
    sent_at = fields.Datetime(readonly=True)

    @api.model
    def _enqueue(self, devices, command, payload=None, payload_by_device=None):
        """Create one command per device and publish them once the transaction commits.

        ``payload``: the same for every device; ``payload_by_device``: {device id: payload},
        for commands that differ per device (iot_bundle's presets)."""
        prefixes = {company: self._iot_topic_prefix(company) for company in devices.company_id}
        payloads = self._prepare_payloads(
            devices, command,
            {device.id: dict((payload_by_device or {}).get(device.id) or payload or {}) for device in devices},
        )
        commands = self.create(
            [
                {
                    "device_id": device.id,
                    "command": command,
                    "payload": json.dumps(payloads[device.id]),
                    "topic": "%siot/%s/commands" % (prefixes[device.company_id], device.identifier),
                }
                for device in devices
            ]
        )
        dbname, ids = self.env.cr.dbname, commands.ids
        self.env.cr.postcommit.add(partial(_publish_after_commit, self.env.registry, dbname, ids))
        return commands

    @api.model
    def _iot_topic_prefix(self, company):
        """The topic prefix of ``company``'s downlink, ``"<prefix>/"`` or ``""``: the system parameter
        ``iot_device.mqtt_topic_prefix`` here; iot_white_label sets one per company."""
        prefix = self.env["ir.config_parameter"].sudo().get_param("iot_device.mqtt_topic_prefix", "").strip("/")
        return prefix + "/" if prefix else ""

    @api.model
    def _prepare_payloads(self, devices, command, payloads):
        """{device id: payload} of ``command`` to ``devices``, each payload a dict of its own:
        a hook for modules that add to what a device is told (iot_bundle adds the device's
        preset to block and unblock, and whether it is blocked to apply_preset)."""
        return payloads

    def _mqtt_broker(self):
        """System parameters first, then IOT_MQTT_HOST / IOT_MQTT_PORT (set by docker-compose)."""
        params = self.env["ir.config_parameter"].sudo()
        host = params.get_param("iot_device.mqtt_host") or os.environ.get("IOT_MQTT_HOST", "127.0.0.1")
        port = int(params.get_param("iot_device.mqtt_port") or os.environ.get("IOT_MQTT_PORT", "1883"))
        return host, port

    def _lock_unsent(self):
        """Lock the commands still to send; skip those another worker is publishing."""
        if not self.ids:
            return self.browse()
        rows = self.env.execute_query(  # flushes the state it reads, nothing else
            SQL(
                "SELECT id FROM iot_billing_device_command command WHERE id = ANY(%s) AND %s != 'sent' "
                "ORDER BY id FOR UPDATE SKIP LOCKED",
                self.ids,
                self._field_to_sql("command", "state"),
            )
        )
        return self.browse([row[0] for row in rows])

    def _mqtt_payload(self):
        self.ensure_one()
        return json.dumps(
            {
                "message_id": self.message_id,
                "command": self.command,
                "payload": json.loads(self.payload or "{}"),
                "issued_at": self.create_date.isoformat() + "Z",
            }
        )

    def _publish(self):
        """Publish the commands (QoS 1) and record the outcome on each of them."""
        commands = self._lock_unsent()
        if not commands:
            return commands
        host, port = self._mqtt_broker()
        results = {}
        error = None
        if mqtt is None:
            error = "the Python package paho-mqtt is not installed"
        else:
            client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2, client_id="odoo-commands-" + uuid.uuid4().hex[:12]
            )
            client.max_queued_messages_set(0)
            try:
                client.connect(host, port, keepalive=30)
                client.loop_start()
                # MQTT message ids are 16-bit and paho refuses a publish whose id is still
                # unacknowledged: a fleet-wide command goes out in windows well below 65,535.
                for start in range(0, len(commands), PUBLISH_WINDOW):
                    infos = [
                        (command, client.publish(command.topic, command._mqtt_payload(), qos=1,
                                                 retain=command.command in RETAINED_COMMANDS))
                        for command in commands[start:start + PUBLISH_WINDOW]
                    ]
                    # One deadline for the window, not one timeout per command: if the broker
                    # goes away, thousands of sequential waits would hold the worker for hours.
                    deadline = time.monotonic() + PUBLISH_TIMEOUT + len(infos) / 1000
                    for command, info in infos:
                        try:
                            info.wait_for_publish(timeout=max(0.0, deadline - time.monotonic()))
                        except (RuntimeError, ValueError) as wait_error:
                            results[command.id] = str(wait_error)
                            continue
                        results[command.id] = (
                            None if info.is_published() else "no PUBACK from the broker in time"
                        )
            except (OSError, ValueError) as connect_error:
                error = "cannot publish to MQTT broker %s:%s: %s" % (host, port, connect_error)
            finally:
                client.disconnect()
                client.loop_stop()
        now = fields.Datetime.now()
        # One write per outcome, not per command: suspending a fleet sends thousands.
        outcomes = defaultdict(list)
        for command in commands:
            failure = error or results.get(command.id, "not published")
            if failure:
                vals = {"attempts": command.attempts + 1, "state": "failed", "last_error": failure[:255]}
            else:
                vals = {"attempts": command.attempts + 1, "state": "sent", "sent_at": now, "last_error": False}
            outcomes[tuple(sorted(vals.items()))].append(command.id)
        for vals, ids in outcomes.items():
            commands.browse(ids).write(dict(vals))
        failed = commands.filtered(lambda command: command.state == "failed")
        if failed:
            _logger.warning("%d device command(s) not published: %s", len(failed), failed[0].last_error)
        return commands

    def action_retry(self):
        """Publish again now, whatever the attempts so far."""
        self.filtered(lambda command: command.state != "sent")._publish()
        return True

    @api.model
    def _cron_publish_pending(self, limit=1000):
        """Retry the commands not published yet (broker down at commit time, crash...)."""
        commands = self.search(
            [("state", "in", ("pending", "failed")), ("attempts", "<", MAX_ATTEMPTS)],
            order="id",
            limit=limit,
        )
        for company, group in commands.grouped("company_id").items():
            group.with_company(company)._publish()


def _publish_after_commit(registry, dbname, ids):
    """Post-commit hook: the request's cursor is done, publish in a cursor of our own."""
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["iot_billing.device.command"].browse(ids).exists()._publish()
    except Exception:  # noqa: BLE001 - never break the request that already committed; the cron retries
        _logger.exception("publishing device commands %s failed; the cron will retry", ids)


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    command_ids = fields.One2many("iot_billing.device.command", "device_id", string="Commands")

    def _apply_transition(self, action, description=None):
        result = super()._apply_transition(action, description)
        command = COMMAND_BY_ACTION.get(action)
        if command and self:
            # sudo: the command is a consequence of a state change the caller was
            # allowed to make; the outbox itself is for managers to read.
            self.env["iot_billing.device.command"].sudo()._enqueue(self, command)
        return result
