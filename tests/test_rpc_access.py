"""The external API as device platforms use it: XML-RPC and JSON-RPC against a real Odoo
server, authenticated as the Integration user (a portal-type user with the IoT Integration
group), never through the ORM."""

import uuid
import xmlrpc.client

import pytest
import requests
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, sql


@pytest.fixture(name="xmlrpc_api")
def xmlrpc_api_fixture(odoo_server):
    common = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/common")
    uid = common.authenticate(odoo_server.db, BRIDGE_LOGIN, BRIDGE_KEY, {})
    assert uid, "the demo Integration user must authenticate"
    models = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/object", allow_none=True)

    def call(model, method, *args, **kwargs):
        return models.execute_kw(odoo_server.db, uid, BRIDGE_KEY, model, method, list(args), kwargs)

    return call


def _jsonrpc(odoo_server, service, method, *args):
    body = {"jsonrpc": "2.0", "method": "call", "id": 1,
            "params": {"service": service, "method": method, "args": list(args)}}
    return requests.post(odoo_server.url + "/jsonrpc", json=body, timeout=60).json()


def test_register_and_post_events_over_xmlrpc(xmlrpc_api, odoo_server):
    identifier = "RPC-" + uuid.uuid4().hex[:10]
    first = xmlrpc_api("iot_billing.device", "api_register", [{"identifier": identifier, "device_type": "meter"}])
    again = xmlrpc_api("iot_billing.device", "api_register", [{"identifier": identifier, "name": "Renamed"}, {}])
    assert first[0]["created"] is True and first[0]["state"] == "pending"
    assert again[0] == {"identifier": identifier, "id": first[0]["id"], "state": "pending", "created": False}
    assert again[1] == {"identifier": False, "error": "missing 'identifier'"}
    event = {"identifier": identifier, "event_type": "door_open", "timestamp": "2022-04-14T10:00:00Z",
             "message_id": "e-1", "payload": {"door": "front"}}
    assert xmlrpc_api("iot_billing.device", "api_post_events", [event, event]) == {
        "accepted": 1, "duplicates": 1, "rejected": []}
    rows = sql(odoo_server.db, "SELECT count(*) FROM iot_billing_device WHERE identifier = %s", (identifier,))
    assert rows[0][0] == 1

    activated = xmlrpc_api("iot_billing.device", "api_activate", [
        {"identifier": identifier, "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET", "date_start": "2022-04-01"},
        {"identifier": identifier + "-X", "contract": "IOT-FLEET-001"},
        {"contract": "IOT-FLEET-001"},
    ])
    assert activated[0]["state"] == "active" and activated[0]["contract_item_id"]
    assert activated[1] == {"identifier": identifier + "-X", "error": "unknown device %r" % (identifier + "-X")}
    assert activated[2]["identifier"] is False and "identifier" in activated[2]["error"]
    schedules = sql(odoo_server.db, "SELECT count(*) FROM iot_invoicing_schedule WHERE contract_item_id = %s",
                    (activated[0]["contract_item_id"],))
    assert schedules[0][0] == 12
    suspended = xmlrpc_api("iot_billing.device", "api_suspend", [{"identifier": identifier}])
    assert suspended[0]["state"] == "suspended"


def test_ingest_over_jsonrpc_with_requests(odoo_server):
    identifier = "RPCJ-" + uuid.uuid4().hex[:10]
    uid = _jsonrpc(odoo_server, "common", "authenticate", odoo_server.db, BRIDGE_LOGIN, BRIDGE_KEY, {})["result"]
    call = lambda model, method, *args: _jsonrpc(  # noqa: E731 - a local shorthand
        odoo_server, "object", "execute_kw", odoo_server.db, uid, BRIDGE_KEY, model, method, list(args))
    call("iot_billing.device", "api_register", [{"identifier": identifier}])
    readings = [{"identifier": identifier, "metric": "kwh", "quantity": "12.5",
                 "timestamp": "2022-04-14T10:00:00+02:00", "message_id": "r-%d" % n} for n in range(3)]
    result = call("iot.usage", "api_ingest", readings + readings[:1] + [dict(readings[0], quantity="NaN",
                                                                          message_id="bad")])["result"]
    assert result["accepted"] == 3 and result["duplicates"] == 1
    assert result["rejected"] == [{"index": 4, "reason": "quantity 'NaN' is not finite"}]
    total = sql(odoo_server.db, "SELECT sum(u.quantity)::text FROM iot_usage u JOIN iot_billing_device d "
                "ON d.id = u.device_id WHERE d.identifier = %s", (identifier,))
    assert total[0][0] == "37.500000"
    buckets = sql(odoo_server.db, "SELECT sum(b.reading_count), sum(b.quantity_sum)::text FROM iot_usage_bucket b "
                  "JOIN iot_billing_device d ON d.id = b.device_id WHERE d.identifier = %s AND b.state = 'to_value'",
                  (identifier,))
    assert buckets[0] == (3, "37.500000")
    over = call("iot.usage", "api_ingest", readings * 3334)
    assert "exceeds the limit of 10000" in over["error"]["data"]["message"]


def test_integration_user_reads_no_invoice_partner_or_contract(xmlrpc_api, odoo_server):
    invoice_ids = [row[0] for row in sql(odoo_server.db, "SELECT id FROM account_move WHERE move_type = 'out_invoice'")]
    assert invoice_ids, "the demo data bills the streetlights"
    with pytest.raises(xmlrpc.client.Fault, match="access"):
        xmlrpc_api("account.move", "read", invoice_ids[:1], fields=["amount_total"])
    assert xmlrpc_api("account.move", "search", [("id", "in", invoice_ids)]) == []
    customer = sql(odoo_server.db, "SELECT id FROM res_partner WHERE name = 'Smart City Utilities'")[0][0]
    assert xmlrpc_api("res.partner", "search", [("id", "=", customer)]) == []
    with pytest.raises(xmlrpc.client.Fault, match="access"):
        xmlrpc_api("iot.contract", "search_read", [], fields=["name"])
    with pytest.raises(xmlrpc.client.Fault, match="access"):
        xmlrpc_api("iot.billing.run", "api_run", "2022-04-30")


def test_unauthenticated_calls_get_nothing(odoo_server):
    common = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/common")
    assert common.authenticate(odoo_server.db, BRIDGE_LOGIN, "wrong-key", {}) is False
    models = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/object", allow_none=True)
    with pytest.raises(xmlrpc.client.Fault, match="Access Denied"):
        models.execute_kw(odoo_server.db, 2, "wrong-key", "iot_billing.device", "search_read", [[]], {})
    answer = _jsonrpc(odoo_server, "object", "execute_kw", odoo_server.db, 2, "", "iot.usage", "api_ingest", [[]])
    assert "Access Denied" in answer["error"]["data"]["message"]


def test_other_company_devices_are_invisible_to_the_api(xmlrpc_api, odoo_server):
    other = odoo_server.rpc("res.company", "create", {"name": "RPC Co " + uuid.uuid4().hex[:6]})
    identifier = "RPCB-" + uuid.uuid4().hex[:10]
    odoo_server.rpc("iot_billing.device", "create",
                    {"name": identifier, "identifier": identifier, "company_id": other},
                    context={"allowed_company_ids": [other]})
    result = xmlrpc_api("iot_billing.device", "api_post_events", [
        {"identifier": identifier, "event_type": "x", "timestamp": "2022-04-14T10:00:00Z"}])
    assert result["rejected"] == [{"index": 0, "reason": "unknown device %r" % identifier}]
    assert xmlrpc_api("iot_billing.device", "search", [("identifier", "=", identifier)]) == []
