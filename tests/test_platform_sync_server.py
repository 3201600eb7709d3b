"""Webhooks and statistics pulls on a real Odoo server: a device registered over the API is told
to the platform once its transaction committed, signed; a platform that was down gets it when the
cron retries; statistics pulled from the platform's API are billed as readings."""

import hashlib
import hmac
import json
import uuid
from datetime import date, timedelta

from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, sql, wait_until

from odoo.addons.iot_platform_sync.tests.http_receiver import Receiver


def _valid(secret, headers, body):
    parts = dict(item.split("=", 1) for item in headers["X-IoT-Signature"].split(","))
    return hmac.compare_digest(
        hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest(), parts["v1"])


def _integration(odoo_server, model, method, *args):
    return odoo_server.rpc(model, method, *args, login=BRIDGE_LOGIN, password=BRIDGE_KEY)


def _cron(odoo_server, xml_id):
    cron_id = odoo_server.rpc("ir.model.data", "check_object_reference", "iot_platform_sync", xml_id)[1]
    odoo_server.rpc("ir.cron", "method_direct_trigger", [cron_id])


def test_webhook_sent_after_commit_and_retried_after_the_platform_was_down(odoo_server):
    receiver = Receiver().start()
    webhook_id = odoo_server.rpc("iot.webhook", "create", {"name": "Test platform " + uuid.uuid4().hex[:6],
                                                           "url": receiver.url, "on_contract_item": False})
    secret = odoo_server.rpc("iot.webhook", "read", [webhook_id], ["secret"])[0]["secret"]
    try:
        identifier = "HOOK-" + uuid.uuid4().hex[:8]
        _integration(odoo_server, "iot_billing.device", "api_register", [{"identifier": identifier}])
        wait_until(lambda: any(method == "POST" for method, *_rest in receiver.received), 20,
                   message="the device.created delivery")
        (_m, _p, _q, headers, body), = [entry for entry in receiver.received if entry[0] == "POST"]
        payload = json.loads(body)
        assert payload["type"] == "device.created"
        assert [change["identifier"] for change in payload["data"]] == [identifier]
        assert _valid(secret, headers, body)

        port = receiver.port
        receiver.stop()
        _integration(odoo_server, "iot_billing.device", "api_register", [{"identifier": identifier,
                                                                          "name": "Renamed"}])
        wait_until(lambda: sql(odoo_server.db, """SELECT attempt_count FROM iot_webhook_delivery
                                                   WHERE webhook_id = %s AND event_type = 'device.changed'""",
                               (webhook_id,)) == [(1,)], 20, message="a first attempt that failed")
        receiver = Receiver(port).start()
        sql(odoo_server.db, "UPDATE iot_webhook_delivery SET next_attempt_at = now() at time zone 'utc' "
            "- interval '1 second' WHERE webhook_id = %s AND state = 'pending'", (webhook_id,))
        _cron(odoo_server, "iot_webhook_delivery_cron")
        (_m, _p, _q, headers, body), = [entry for entry in receiver.received if entry[0] == "POST"]
        payload = json.loads(body)
        assert (payload["type"], payload["data"][0]["name"], payload["data"][0]["changed"]) == (
            "device.changed", "Renamed", ["name"])
        assert _valid(secret, headers, body)
        assert sql(odoo_server.db, "SELECT state, attempt_count FROM iot_webhook_delivery WHERE webhook_id = %s"
                   " ORDER BY id", (webhook_id,)) == [("done", 1), ("done", 2)]
    finally:
        receiver.stop()
        odoo_server.rpc("iot.webhook", "write", [webhook_id], {"active": False})


def test_statistics_pulled_by_the_cron_are_stored_once(odoo_server):
    platform = Receiver().start()
    identifier = "STAT-" + uuid.uuid4().hex[:8]
    _integration(odoo_server, "iot_billing.device", "api_register", [{"identifier": identifier}])
    day = (date.today() - timedelta(days=1)).isoformat()
    statistic = {"id": "day-1", "identifier": identifier, "metric": "kwh", "quantity": "42.5",
                 "timestamp": day + "T12:00:00Z"}
    platform.pages = {"": {"statistics": [statistic], "cursor": "after-day-1", "more": False},
                      "after-day-1": {"statistics": [statistic], "cursor": "after-day-1", "more": False}}
    source_id = odoo_server.rpc("iot.statistics.source", "create", {
        "name": "Platform statistics " + identifier, "url": platform.url})
    try:
        _cron(odoo_server, "iot_statistics_source_cron")
        odoo_server.rpc("iot.statistics.source", "write", [source_id], {"next_pull_at": "2000-01-01 00:00:00"})
        _cron(odoo_server, "iot_statistics_source_cron")
        stored = sql(odoo_server.db, """SELECT count(*), sum(u.quantity)::text FROM iot_usage u
                                          JOIN iot_billing_device d ON d.id = u.device_id WHERE d.identifier = %s""",
                     (identifier,))
        assert stored == [(1, "42.500000")]
        source = odoo_server.rpc("iot.statistics.source", "read", [source_id], ["cursor", "last_result"])[0]
        assert source["cursor"] == "after-day-1"
        assert source["last_result"] == "0 stored, 1 already stored, 0 rejected"
        assert [entry[2].get("since", [""])[0] for entry in platform.received] == ["", "after-day-1"]
    finally:
        platform.stop()
        odoo_server.rpc("iot.statistics.source", "write", [source_id], {"active": False})
