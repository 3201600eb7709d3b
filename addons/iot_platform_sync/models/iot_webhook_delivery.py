"""Outgoing webhooks: one delivery per webhook and batch of changes, stored in the transaction
that made the changes and POSTed only after it commits (``cr.postcommit``); a refused or failed
POST is retried by a cron with growing delays until the webhook's ``max_attempts``.

Each POST carries the same body on every attempt, its delivery id (the receiver's key to drop a
repeat: delivery is at least once) and an HMAC-SHA256 signature of ``<timestamp>.<body>``.
"""

import hashlib
import hmac
import json
import logging
import time
import uuid
from datetime import timedelta
from functools import partial

import requests

from odoo import SUPERUSER_ID, api, fields, models
from odoo.addons.iot_contract.tools import claim_rows
from odoo.tools import SQL

_logger = logging.getLogger(__name__)

# Seconds before attempt n + 1 after attempt n failed (the last repeats).
RETRY_DELAYS = (60, 300, 1800, 7200, 21600, 43200, 86400)
CHANGES_PER_DELIVERY = 500
SEND_LIMIT = 200  # deliveries per cron call: each may wait for its webhook's timeout


def signature(secret, timestamp, body):
    """The X-IoT-Signature header value: ``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    digest = hmac.new(secret.encode(), b"%d.%s" % (timestamp, body.encode()), hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (timestamp, digest)


class IotWebhookDelivery(models.Model):
    _name = "iot.webhook.delivery"
    _description = "IoT Webhook Delivery"
    _order = "id desc"
    _rec_name = "event_type"

    webhook_id = fields.Many2one("iot.webhook", required=True, index=True, ondelete="cascade")
    company_id = fields.Many2one(related="webhook_id.company_id", store=True, index=True)
    uuid = fields.Char(string="Delivery Id", required=True, readonly=True, copy=False,
                       default=lambda self: str(uuid.uuid4()))
    event_type = fields.Char(required=True, readonly=True, help="e.g. device.changed, contract_item.created")
    change_count = fields.Integer(string="Changes", readonly=True)
    body = fields.Text(required=True, readonly=True, help="The JSON sent, the same on every attempt.")
    state = fields.Selection(
        [("pending", "Pending"), ("done", "Delivered"), ("failed", "Failed")],
        required=True, default="pending", readonly=True, index=True,
    )
    attempt_count = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, default=fields.Datetime.now, index=True)
    last_status = fields.Integer(string="Last HTTP Status", readonly=True)
    last_error = fields.Text(readonly=True)
    delivered_at = fields.Datetime(readonly=True)

    @api.model
    def _enqueue(self, webhooks, event_type, changes):
        """Store the deliveries of ``changes`` (JSON-ready dicts) to each webhook, in batches,
        and send them once this transaction commits."""
        if not webhooks or not changes:
            return self.browse()
        now = fields.Datetime.now()
        vals_list = []
        for webhook in webhooks:
            for start in range(0, len(changes), CHANGES_PER_DELIVERY):
                batch = changes[start:start + CHANGES_PER_DELIVERY]
                delivery_uuid = str(uuid.uuid4())
                body = json.dumps({
                    "id": delivery_uuid,
                    "type": event_type,
                    "created_at": now.isoformat() + "Z",
                    "company_id": webhook.company_id.id,
                    "data": batch,
                }, sort_keys=True, default=str)
                vals_list.append({"webhook_id": webhook.id, "uuid": delivery_uuid, "event_type": event_type,
                                  "change_count": len(batch), "body": body, "next_attempt_at": now})
        deliveries = self.sudo().create(vals_list)
        self.env.cr.postcommit.add(partial(_send_after_commit, self.env.registry, deliveries.ids))
        return deliveries

    def _send(self):
        """POST the pending deliveries among these that no other transaction is sending."""
        self.flush_model()
        ids = claim_rows(self.env.cr, self._table, self.ids, where=SQL("state = 'pending'"))
        for delivery in self.browse(ids):
            delivery._attempt()

    def _attempt(self):
        webhook = self.webhook_id.sudo()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "odoo-iot-billing-webhook/1",
            "X-IoT-Delivery": self.uuid,
            "X-IoT-Event": self.event_type,
            "X-IoT-Signature": signature(webhook.secret, timestamp, self.body),
        }
        status, error = None, None
        try:
            response = requests.post(webhook.url, data=self.body.encode(), headers=headers, timeout=webhook.timeout)
            status = response.status_code
            if not 200 <= status < 300:
                error = "HTTP %d: %s" % (status, response.text[:500])
        except requests.RequestException as exc:
            error = "%s: %s" % (type(exc).__name__, exc)
        attempts = self.attempt_count + 1
        now = fields.Datetime.now()
        if error is None:
            self.write({"state": "done", "attempt_count": attempts, "last_status": status, "last_error": False,
                        "delivered_at": now})
            return
        delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
        self.write({
            "state": "failed" if attempts >= webhook.max_attempts else "pending",
            "attempt_count": attempts,
            "last_status": status or 0,
            "last_error": error,
            "next_attempt_at": now + timedelta(seconds=delay),
        })
        _logger.info("webhook delivery %s to %s failed (attempt %d): %s", self.uuid, webhook.url, attempts, error)

    def action_retry(self):
        """Send failed or pending deliveries again now."""
        self.filtered(lambda delivery: delivery.state != "done").write(
            {"state": "pending", "next_attempt_at": fields.Datetime.now()})
        self._send()

    @api.model
    def _cron_send_due(self, limit=SEND_LIMIT):
        due = self.search([("state", "=", "pending"), ("next_attempt_at", "<=", fields.Datetime.now())],
                          limit=limit, order="next_attempt_at, id")
        due._send()
        if len(due) == limit:
            self.env.ref("iot_platform_sync.iot_webhook_delivery_cron")._trigger()


def _send_after_commit(registry, ids):
    """Post-commit hook: the changes are committed, send in a cursor of our own."""
    try:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["iot.webhook.delivery"].browse(ids).exists()._send()
    except Exception:  # noqa: BLE001 - the changes already committed; the cron retries
        _logger.exception("sending webhook deliveries %s failed; the cron will retry", ids)
