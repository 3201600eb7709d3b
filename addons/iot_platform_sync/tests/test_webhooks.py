import hashlib
import hmac
import json
from datetime import timedelta

from odoo import fields
from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import tagged

from .http_receiver import Receiver


def check_signature(secret, headers, body):
    """What a receiver does: recompute the HMAC of ``<t>.<body>`` and compare in constant time."""
    parts = dict(item.split("=", 1) for item in headers["X-IoT-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


@tagged("post_install", "-at_install")
class TestWebhooks(IotContractCommon):
    def setUp(self):
        super().setUp()
        self.receiver = Receiver().start()
        self.addCleanup(self.receiver.stop)
        self.webhook = self.env["iot.webhook"].create({"name": "Platform", "url": self.receiver.url})
        self.Delivery = self.env["iot.webhook.delivery"]

    def _deliveries(self, event_type=None):
        self.env.cr.flush()  # what a commit does first: the changes gathered become deliveries
        domain = [("webhook_id", "=", self.webhook.id)]
        if event_type:
            domain.append(("event_type", "=", event_type))
        return self.Delivery.search(domain, order="id")

    def _posted(self):
        return [(headers, json.loads(body)) for method, _p, _q, headers, body in self.receiver.received
                if method == "POST"]

    def test_device_changes_delivered_signed(self):
        device = self._pending_device("HOOK-1", "Camera 1")
        self._deliveries()  # registered in one transaction, activated in the next
        self._activate(device)
        deliveries = self._deliveries()
        self.assertIn("device.created", deliveries.mapped("event_type"))
        changed = self._deliveries("device.changed")
        self.assertTrue(changed, "activation changes the device's state and contract")
        deliveries._send()
        self.assertEqual(set(deliveries.mapped("state")), {"done"})
        posted = self._posted()
        self.assertEqual(len(posted), len(deliveries))
        for (headers, body), (_m, _p, _q, _h, raw) in zip(posted, self.receiver.received, strict=True):
            self.assertTrue(check_signature(self.webhook.secret, headers, raw))
            self.assertFalse(check_signature("another secret", headers, raw))
            self.assertEqual(headers["X-IoT-Delivery"], body["id"])
            self.assertEqual(headers["X-IoT-Event"], body["type"])
        states = [change for _h, body in posted if body["type"] == "device.changed" for change in body["data"]]
        self.assertIn("active", [change["state"] for change in states])
        self.assertTrue(all(change["identifier"] == "HOOK-1" for change in states))
        self.assertEqual(len(states), 1, "one activation, told once with its committed values")
        self.assertEqual(states[0]["changed"], ["contract_id", "state"])
        items = [change for _h, body in posted if body["type"] == "contract_item.created" for change in body["data"]]
        self.assertEqual([(item["device_identifier"], item["plan"], item["contract_reference"]) for item in items],
                         [("HOOK-1", "PREMIUM-FLEET", "IOT-FLEET-001")])

    def test_retried_after_the_receiver_was_down(self):
        port = self.receiver.port
        self.receiver.stop()
        device = self._pending_device("HOOK-2")
        delivery = self._deliveries("device.created")
        delivery._send()
        self.assertEqual(delivery.state, "pending")
        self.assertEqual(delivery.attempt_count, 1)
        self.assertIn("ConnectionError", delivery.last_error)
        self.assertGreater(delivery.next_attempt_at, fields.Datetime.now())
        body = delivery.body

        self.Delivery._cron_send_due()
        self.assertEqual(delivery.attempt_count, 1, "not due yet: the cron leaves it")

        self.receiver = Receiver(port).start()
        self.addCleanup(self.receiver.stop)
        delivery.next_attempt_at = fields.Datetime.now() - timedelta(seconds=1)
        self.Delivery._cron_send_due()
        self.assertEqual((delivery.state, delivery.attempt_count), ("done", 2))
        (headers, posted), = self._posted()
        self.assertEqual(self.receiver.received[0][4].decode(), body, "the same body on every attempt")
        self.assertEqual(posted["data"][0]["identifier"], device.identifier)
        self.assertTrue(check_signature(self.webhook.secret, headers, body.encode()))

    def test_refused_until_failed_then_retried_by_hand(self):
        self.webhook.max_attempts = 2
        self.receiver.statuses = [500, 503]
        self._pending_device("HOOK-3")
        delivery = self._deliveries("device.created")
        delivery._send()
        self.assertEqual((delivery.state, delivery.last_status), ("pending", 500))
        delivery.next_attempt_at = fields.Datetime.now() - timedelta(seconds=1)
        self.Delivery._cron_send_due()
        self.assertEqual((delivery.state, delivery.attempt_count, delivery.last_status), ("failed", 2, 503))
        self.assertEqual(self.webhook.failed_count, 1)
        self.Delivery._cron_send_due()
        self.assertEqual(len(self.receiver.received), 2, "a failed delivery waits for a person")
        delivery.action_retry()
        self.assertEqual((delivery.state, delivery.attempt_count), ("done", 3))

    def test_topics_and_companies(self):
        self.webhook.on_device = False
        other_company = self.env["res.company"].create({"name": "Other Tenant"})
        other = self.env["iot.webhook"].create(
            {"name": "Other", "url": self.receiver.url, "company_id": other_company.id})
        device = self._pending_device("HOOK-4")
        self.assertFalse(self._deliveries(), "devices are not this webhook's topic")
        self.assertFalse(self.Delivery.search([("webhook_id", "=", other.id)]), "another company's webhook")
        self.webhook.on_device = True
        self._deliveries()
        device.name = "Renamed"
        device.notes = "<p>not told: not a field platforms hold</p>"
        self.assertEqual(self._deliveries().mapped("event_type"), ["device.changed"])
        device.notes = "<p>again</p>"
        self.assertEqual(len(self._deliveries()), 1)
        self.assertEqual(json.loads(self._deliveries().body)["data"][0]["changed"], ["name"])

    def test_organization_moves_told(self):
        parent = self.env["res.partner"].create({"name": "Group Holding", "is_company": True})
        self.customer.parent_id = parent
        self.customer.name = "Subsidiary One"
        deliveries = self._deliveries("organization.changed")
        self.assertEqual(len(deliveries), 1)
        data = json.loads(deliveries.body)["data"]
        self.assertEqual(len(data), 1)
        self.assertEqual((data[0]["parent_id"], data[0]["name"]), (parent.id, "Subsidiary One"))
        self.assertEqual(data[0]["changed"], ["name", "parent_id"])
        parent.name = "Not a customer of IoT contracts"
        self.assertEqual(len(self._deliveries("organization.changed")), 1)

    def test_large_batches_split(self):
        self.Device.with_user(self.integration_user).api_register(
            [{"identifier": "BULK-%d" % number, "partner": self.customer.id} for number in range(1201)])
        deliveries = self._deliveries("device.created")
        self.assertEqual(deliveries.mapped("change_count"), [500, 500, 201])
        identifiers = {change["identifier"] for delivery in deliveries for change in json.loads(delivery.body)["data"]}
        self.assertEqual(len(identifiers), 1201)

    def test_bad_url_refused(self):
        with self.assertRaisesRegex(Exception, "must start with http"):
            self.env["iot.webhook"].create({"name": "Bad", "url": "ftp://example"})
