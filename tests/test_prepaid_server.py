"""Prepaid credit end to end: a real Odoo server (the demo database) and a private Mosquitto.

A top-up is invoiced and paid over RPC (the register-payment wizard, as an accountant clicks
it): the wallet holds its credit. Readings sent over RPC debit it in their batch's transaction;
the low level sends the customer an e-mail, logs a device event and publishes `low_balance`; at
zero the prepaid devices receive a retained `block`; a second top-up, once paid, `unblock`.
"""

import uuid
from datetime import UTC, datetime

import pytest
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, wait_until
from test_dunning_server import Subscriber


def _pay_topup(rpc, wallet, amount):
    action = rpc("iot.wallet.topup", "create", {"wallet_id": wallet, "amount": amount})
    move = rpc("iot.wallet.topup", "action_create_invoice", [action])["res_id"]
    wizard = rpc("account.payment.register", "create", {},
                 context={"active_model": "account.move", "active_ids": [move]})
    rpc("account.payment.register", "action_create_payments", [wizard],
        context={"active_model": "account.move", "active_ids": [move]})
    return move


def _wallet(rpc, wallet):
    return rpc("iot.wallet", "read", [wallet], ["balance", "available", "low_balance_notified", "blocked_no_credit"])[0]


@pytest.fixture(name="prepaid_fleet")
def prepaid_fleet_fixture(odoo_server):
    rpc = odoo_server.rpc
    tag = uuid.uuid4().hex[:6].upper()
    partner = rpc("res.partner", "create", {"name": "Prepaid customer " + tag, "email": "pre@example.com"})
    plan = rpc("product.product", "create", {
        "name": "Prepaid plan " + tag, "default_code": "PRE-" + tag, "type": "service", "list_price": 0.0,
        "iot_is_plan": True, "iot_duration_months": 12, "iot_prepaid": True, "taxes_id": [(6, 0, [])]})
    template = rpc("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
    metric = rpc("ir.model.data", "check_object_reference", "iot_usage", "metric_kwh")[1]
    rpc("iot.usage.calculator", "create", {"name": "Energy " + tag, "product_tmpl_id": template,
                                           "metric_id": metric, "pricing": "per_unit", "unit_price": 1.0})
    contract = rpc("iot.contract", "create", {"name": "Prepaid " + tag, "reference": "PRE-" + tag,
                                             "partner_id": partner, "tz": "UTC"})
    rpc("iot.contract", "write", [contract], {"state": "running"})
    identifiers = ["PRE%s-%d" % (tag, number) for number in (1, 2)]
    rpc("iot_billing.device", "api_register", [{"identifier": i, "partner": partner} for i in identifiers],
        login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    today = datetime.now(UTC).date()
    activated = rpc("iot_billing.device", "api_activate", [
        {"identifier": i, "contract": "PRE-" + tag, "plan": "PRE-" + tag,
         "date_start": today.replace(day=1).isoformat()} for i in identifiers],
        login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    assert all("error" not in entry for entry in activated), activated
    wallet = rpc("iot.contract", "action_iot_open_wallet", [contract])["res_id"]
    rpc("iot.wallet", "write", [wallet], {"low_balance_amount": 5.0})
    return {"tag": tag, "contract": contract, "wallet": wallet, "identifiers": identifiers}


def _ingest(rpc, identifier, quantity, tag):
    now = datetime.now(UTC).replace(microsecond=0)
    result = rpc("iot.usage", "api_ingest", [{
        "identifier": identifier, "metric": "kwh", "quantity": quantity,
        "timestamp": now.isoformat().replace("+00:00", "Z"), "message_id": "%s-%s" % (tag, uuid.uuid4().hex),
    }], login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    assert result["accepted"] == 1, result


def test_top_up_debit_low_balance_block_then_top_up_unblocks(odoo_server, broker, prepaid_fleet):
    rpc, wallet, identifiers, tag = (odoo_server.rpc, prepaid_fleet["wallet"], prepaid_fleet["identifiers"],
                                     prepaid_fleet["tag"])
    subscriber = Subscriber(broker, identifiers)
    try:
        _pay_topup(rpc, wallet, 10.0)
        assert _wallet(rpc, wallet)["balance"] == 10.0

        # 6 kWh at 1.00: 4.00 left, at or below the low level of 5.00.
        _ingest(rpc, identifiers[0], "6", tag)
        state = _wallet(rpc, wallet)
        assert (state["balance"], state["low_balance_notified"], state["blocked_no_credit"]) == (4.0, True, False)
        wait_until(lambda: all(subscriber.commands(i) == ["low_balance"] for i in identifiers), 20,
                   message="low_balance published")
        mails = rpc("mail.mail", "search_read", [("model", "=", "iot.wallet"), ("res_id", "=", wallet)],
                    ["subject", "body_html"])
        assert len(mails) == 1 and "low" in mails[0]["subject"], mails
        events = rpc("iot_billing.device.event", "search_count",
                     [("device_id.identifier", "in", identifiers), ("event_type", "=", "low_balance")])
        assert events == 2

        # 5 kWh more: -1.00, no credit: both prepaid devices are blocked.
        _ingest(rpc, identifiers[1], "5", tag)
        state = _wallet(rpc, wallet)
        assert (state["available"], state["blocked_no_credit"]) == (-1.0, True)
        wait_until(lambda: all(subscriber.commands(i) == ["low_balance", "block"] for i in identifiers), 20,
                   message="block published")
        devices = rpc("iot_billing.device", "search_read", [("identifier", "in", identifiers)],
                      ["state", "iot_no_credit", "iot_credit_available"], login=BRIDGE_LOGIN, password=BRIDGE_KEY)
        assert {(d["state"], d["iot_no_credit"], d["iot_credit_available"]) for d in devices} == {
            ("suspended", True, -1.0)}
        # The platform cannot resume them, nor post them as resumed: refused per entry, with the reason.
        reason = "device %r is blocked for no credit: a top-up of its contract's prepaid credit releases it"
        resumed = rpc("iot_billing.device", "api_resume", [{"identifier": identifiers[0]}, {"identifier": "ghost"}],
                      login=BRIDGE_LOGIN, password=BRIDGE_KEY)
        assert resumed == [{"identifier": identifiers[0], "error": reason % identifiers[0]},
                           {"identifier": "ghost", "error": "unknown device 'ghost'"}], resumed
        now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        posted = rpc("iot_billing.device", "api_post_events", [
            {"identifier": identifiers[1], "event_type": "resumed", "timestamp": now},
            {"identifier": identifiers[1], "event_type": "door_open", "timestamp": now}],
            login=BRIDGE_LOGIN, password=BRIDGE_KEY)
        assert (posted["accepted"], posted["rejected"]) == (1, [{"index": 0, "reason": reason % identifiers[1]}])

        # A paid top-up: credit above zero, the devices are unblocked by the payment.
        _pay_topup(rpc, wallet, 20.0)
        state = _wallet(rpc, wallet)
        assert (state["balance"], state["blocked_no_credit"], state["low_balance_notified"]) == (19.0, False, False)
        wait_until(lambda: all(subscriber.commands(i) == ["low_balance", "block", "unblock"] for i in identifiers),
                   20, message="unblock published")
        states = rpc("iot_billing.device", "search_read", [("identifier", "in", identifiers)], ["state"])
        assert {d["state"] for d in states} == {"active"}
    finally:
        subscriber.close()
