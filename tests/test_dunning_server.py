"""Dunning end to end: a real Odoo server (the demo database) and the project's Mosquitto.

An invoice goes overdue, the reminder level, then the blocking level: the devices
receive a retained 'block' on their command topic. The payment is registered over
RPC (the register-payment wizard, as an accountant clicks it): the same devices
receive 'unblock'. A device suspended by hand and a 'never block' device are not
touched; re-running the evaluation (button, then the daily cron) sends nothing twice.
A second company's contract is dunned by that company's policy and released by its
own payment, without a message to the first company's devices.
"""

import json
import threading
import time
import uuid
from datetime import date, timedelta

import paho.mqtt.client as mqtt
import pytest
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, sql, wait_until


class Subscriber:
    """Collects the commands published to some devices."""

    def __init__(self, broker, identifiers):
        self.received = {identifier: [] for identifier in identifiers}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe([("iot/%s/commands" % identifier, 1) for identifier in identifiers])
        assert subscribed.wait(5)

    def _on_message(self, client, userdata, message):
        identifier = message.topic.split("/")[1]
        self.received[identifier].append(json.loads(message.payload)["command"])

    def commands(self, identifier):
        return list(self.received[identifier])

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _month_start(day, months_back):
    for _ in range(months_back):
        day = day.replace(day=1) - timedelta(days=1)
    return day.replace(day=1)


@pytest.fixture(name="fleet")
def fleet_fixture(odoo_server):
    """A contract of three devices billed for a month that ended two months ago, due then."""
    rpc = odoo_server.rpc
    tag = uuid.uuid4().hex[:6].upper()
    start = _month_start(date.today(), 3)
    month_end = _month_start(date.today(), 2) - timedelta(days=1)
    partner = rpc("res.partner", "create", {"name": "Dunning customer " + tag, "email": "dun@example.com"})
    rpc("product.product", "create", {
        "name": "Dunning plan " + tag, "default_code": "DUN-" + tag, "type": "service", "list_price": 20.0,
        "iot_is_plan": True, "iot_duration_months": 12, "taxes_id": [(6, 0, [])]})
    contract = rpc("iot.contract", "create", {"name": "Dunning " + tag, "reference": "DUN-" + tag,
                                             "partner_id": partner})
    # Immediate payment: due on the invoice date (without a term, Odoo makes it due the day it is created).
    term = rpc("ir.model.data", "check_object_reference", "account", "account_payment_term_immediate")[1]
    # action_start returns None, which JSON-RPC answers without a result: write the state.
    rpc("iot.contract", "write", [contract], {"state": "running", "payment_term_id": term})
    identifiers = {role: "DUN%s-%s" % (tag, role) for role in ("normal", "manual", "emergency")}
    rpc("iot_billing.device", "api_register", [{"identifier": i, "partner": partner} for i in identifiers.values()],
        login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    activated = rpc("iot_billing.device", "api_activate", [
        {"identifier": i, "contract": "DUN-" + tag, "plan": "DUN-" + tag, "date_start": start.isoformat()}
        for i in identifiers.values()], login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    assert all("error" not in entry for entry in activated), activated
    devices = {role: rpc("iot_billing.device", "search", [("identifier", "=", i)])[0]
               for role, i in identifiers.items()}
    rpc("iot_billing.device", "write", [devices["emergency"]], {"iot_never_block": True})
    run = rpc("iot.billing.run", "api_run", month_end.isoformat())
    invoices = rpc("account.move", "search_read", [("id", "in", run["invoice_ids"]), ("partner_id", "=", partner)],
                   ["amount_total", "invoice_date_due", "payment_state"])
    assert len(invoices) == 1 and invoices[0]["amount_total"] == 60.0, invoices
    return {"tag": tag, "contract": contract, "partner": partner, "invoice": invoices[0],
            "identifiers": identifiers, "devices": devices}


def _policy(rpc, tag, days_overdue, company=None):
    """Reminder reached today, blocking one day ahead (moved to today by the test)."""
    template = rpc("ir.model.data", "check_object_reference", "iot_dunning", "iot_dunning_mail_template_reminder")[1]
    values = {"name": "Dunning test " + tag, "level_ids": [
        (0, 0, {"name": "Reminder", "days_after_due": days_overdue - 1, "mail_template_id": template}),
        (0, 0, {"name": "Block", "days_after_due": days_overdue + 1, "block": True, "mail_template_id": template}),
    ]}
    if company:
        values["company_id"] = company
    return rpc("iot.dunning.policy", "create", values)


def _contract_state(rpc, contract):
    return rpc("iot.contract", "read", [contract], ["iot_dunning_level_id", "iot_dunning_blocked_since"])[0]


def _device_states(rpc, devices):
    rows = rpc("iot_billing.device", "read", list(devices.values()), ["state", "iot_suspension_reason"])
    by_id = {row["id"]: (row["state"], row["iot_suspension_reason"]) for row in rows}
    return {role: by_id[device] for role, device in devices.items()}


def _mails(rpc, contract):
    return rpc("mail.message", "search_read", [("model", "=", "iot.contract"), ("res_id", "=", contract),
                                               ("message_type", "=", "comment")], ["body", "partner_ids"])


def test_overdue_block_then_payment_unblocks(odoo_server, broker, fleet):
    rpc, devices, identifiers = odoo_server.rpc, fleet["devices"], fleet["identifiers"]
    days_overdue = (date.today() - date.fromisoformat(fleet["invoice"]["invoice_date_due"])).days
    assert days_overdue > 30
    policy = _policy(rpc, fleet["tag"], days_overdue)
    rpc("iot.contract", "write", [fleet["contract"]], {"iot_dunning_policy_id": policy})
    subscriber = Subscriber(broker, identifiers.values())
    try:
        rpc("iot_billing.device", "action_suspend", [devices["manual"]])
        wait_until(lambda: subscriber.commands(identifiers["manual"]) == ["block"], 20, message="manual block")

        # Reminder level: an e-mail to the customer naming the devices to be blocked, nothing blocked.
        rpc("iot.contract", "action_iot_dunning_evaluate", [fleet["contract"]])
        mails = _mails(rpc, fleet["contract"])
        assert len(mails) == 1 and mails[0]["partner_ids"] == [fleet["partner"]]
        assert identifiers["normal"] in mails[0]["body"] and identifiers["emergency"] not in mails[0]["body"]
        assert _device_states(rpc, devices)["normal"] == ("active", False)

        # The blocking day comes.
        block_level = rpc("iot.dunning.level", "search", [("policy_id", "=", policy), ("block", "=", True)])
        rpc("iot.dunning.level", "write", block_level, {"days_after_due": days_overdue})
        rpc("iot.contract", "action_iot_dunning_evaluate", [fleet["contract"]])
        wait_until(lambda: subscriber.commands(identifiers["normal"]) == ["block"], 20, message="dunning block")
        assert _device_states(rpc, devices) == {
            "normal": ("suspended", "unpaid"), "manual": ("suspended", "manual"), "emergency": ("active", False)}
        state = _contract_state(rpc, fleet["contract"])
        assert state["iot_dunning_level_id"][0] == block_level[0] and state["iot_dunning_blocked_since"]

        # Re-running changes nothing and sends nothing.
        lines = rpc("iot.dunning.line", "search_count", [("contract_id", "=", fleet["contract"])])
        assert lines == 2
        rpc("iot.contract", "action_iot_dunning_evaluate", [fleet["contract"]])
        assert rpc("iot.dunning.line", "search_count", [("contract_id", "=", fleet["contract"])]) == lines
        assert len(_mails(rpc, fleet["contract"])) == 2
        # The daily cron, twice, with today's evaluation forgotten first: nothing new either.
        sql(odoo_server.db, "UPDATE iot_contract SET iot_dunning_evaluated_on = NULL WHERE id = %s",
            (fleet["contract"],))
        cron = rpc("ir.model.data", "check_object_reference", "iot_dunning", "iot_dunning_cron")[1]
        rpc("ir.cron", "method_direct_trigger", [cron])
        rpc("ir.cron", "method_direct_trigger", [cron])
        [contract] = rpc("iot.contract", "read", [fleet["contract"]], ["iot_dunning_evaluated_on"])
        assert contract["iot_dunning_evaluated_on"] == date.today().isoformat()
        assert rpc("iot.dunning.line", "search_count", [("contract_id", "=", fleet["contract"])]) == lines
        assert len(_mails(rpc, fleet["contract"])) == 2
        time.sleep(1)  # a second 'block' would have arrived by now
        assert subscriber.commands(identifiers["normal"]) == ["block"]

        # A platform cannot lift the block.
        answer = rpc("iot_billing.device", "api_resume", [{"identifier": identifiers["normal"]}],
                     login=BRIDGE_LOGIN, password=BRIDGE_KEY)
        assert "blocked for unpaid" in answer[0]["error"]

        # The accountant registers the payment: the same device is unblocked.
        context = {"active_model": "account.move", "active_ids": [fleet["invoice"]["id"]]}
        wizard = rpc("account.payment.register", "create", {"amount": 60.0}, context=context)
        rpc("account.payment.register", "action_create_payments", [wizard], context=context)
        [invoice] = rpc("account.move", "read", [fleet["invoice"]["id"]], ["payment_state"])
        assert invoice["payment_state"] in ("in_payment", "paid")
        wait_until(lambda: subscriber.commands(identifiers["normal"]) == ["block", "unblock"], 20,
                   message="unblock after payment")
        assert _device_states(rpc, devices) == {
            "normal": ("active", False), "manual": ("suspended", "manual"), "emergency": ("active", False)}
        assert not _contract_state(rpc, fleet["contract"])["iot_dunning_blocked_since"]
        rpc("iot.contract", "action_iot_dunning_evaluate", [fleet["contract"]])
        time.sleep(1)  # whatever else would be published has arrived by now
        assert subscriber.commands(identifiers["manual"]) == ["block"]
        assert subscriber.commands(identifiers["emergency"]) == []
        assert subscriber.commands(identifiers["normal"]) == ["block", "unblock"]
    finally:
        subscriber.close()
    commands = rpc("iot_billing.device.command", "search_read", [("device_id", "=", devices["normal"])],
                   ["command", "state"], order="id")
    assert [(c["command"], c["state"]) for c in commands] == [("block", "sent"), ("unblock", "sent")]


def test_second_company_is_dunned_by_its_own_policy(odoo_server, broker, fleet):
    rpc, tag = odoo_server.rpc, fleet["tag"]
    company_a = rpc("iot.contract", "read", [fleet["contract"]], ["company_id"])[0]["company_id"][0]
    company_b = rpc("res.company", "create", {"name": "Dunning B " + tag})
    admin = rpc("res.users", "search", [("login", "=", "admin")])
    rpc("res.users", "write", admin, {"company_ids": [(4, company_b)]})
    rpc("account.chart.template", "try_loading", [], "generic_coa", company_b, False)  # not @api.model: ids first
    in_b = {"allowed_company_ids": [company_b]}
    term = rpc("ir.model.data", "check_object_reference", "account", "account_payment_term_immediate")[1]
    rpc("product.product", "create", {"name": "Plan B", "default_code": "DUNB-" + tag, "type": "service",
                                      "list_price": 30.0, "iot_is_plan": True, "iot_duration_months": 12,
                                      "company_id": company_b, "taxes_id": [(6, 0, [])]}, context=in_b)
    contract_b = rpc("iot.contract", "create", {"name": "B", "reference": "DUNB-" + tag, "partner_id": fleet["partner"],
                                                "payment_term_id": term}, context=in_b)
    rpc("iot.contract", "write", [contract_b], {"state": "running"}, context=in_b)
    identifier_b = "DUNB%s-1" % tag
    device_b = rpc("iot_billing.device", "create", {"name": identifier_b, "identifier": identifier_b,
                                                    "state": "pending", "company_id": company_b}, context=in_b)
    start = _month_start(date.today(), 3)
    month_end = _month_start(date.today(), 2) - timedelta(days=1)
    activated = rpc("iot_billing.device", "api_activate", [{"identifier": identifier_b, "contract": "DUNB-" + tag,
                                                            "plan": "DUNB-" + tag, "date_start": start.isoformat()}],
                    context=in_b)
    assert "error" not in activated[0], activated
    run_b = rpc("iot.billing.run", "api_run", month_end.isoformat(), context=in_b)
    assert len(run_b["invoice_ids"]) == 1, run_b
    days_overdue = (date.today() - date.fromisoformat(fleet["invoice"]["invoice_date_due"])).days
    policy_b = rpc("iot.dunning.policy", "create", {"name": "B " + tag, "company_id": company_b, "level_ids": [
        (0, 0, {"name": "B block", "days_after_due": days_overdue - 1, "block": True})]}, context=in_b)
    rpc("res.company", "write", [company_b], {"iot_dunning_policy_id": policy_b})
    policy_a = _policy(rpc, tag, days_overdue)  # reminder today, blocking tomorrow
    rpc("iot.contract", "write", [fleet["contract"]], {"iot_dunning_policy_id": policy_a})

    subscriber = Subscriber(broker, [identifier_b, fleet["identifiers"]["normal"]])
    try:
        rpc("iot.contract", "action_iot_dunning_evaluate", [fleet["contract"], contract_b],
            context={"allowed_company_ids": [company_b, company_a]})
        wait_until(lambda: subscriber.commands(identifier_b) == ["block"], 20, message="block in company B")
        assert _device_states(rpc, fleet["devices"])["normal"] == ("active", False), "A's policy does not block yet"
        lines_b = rpc("iot.dunning.line", "search_read", [("contract_id", "=", contract_b)],
                      ["company_id", "level_id"], context=in_b)
        assert [line["company_id"][0] for line in lines_b] == [company_b]
        # Paying company B's invoice releases B's device only; A's user does not see B's dunning.
        context = {"active_model": "account.move", "active_ids": run_b["invoice_ids"], **in_b}
        wizard = rpc("account.payment.register", "create", {}, context=context)
        rpc("account.payment.register", "action_create_payments", [wizard], context=context)
        wait_until(lambda: subscriber.commands(identifier_b) == ["block", "unblock"], 20, message="unblock in B")
        assert rpc("iot.dunning.line", "search_count", [("contract_id", "=", contract_b)],
                   context={"allowed_company_ids": [company_a]}) == 0
        time.sleep(1)
        assert subscriber.commands(fleet["identifiers"]["normal"]) == []
    finally:
        subscriber.close()
    assert rpc("iot_billing.device", "read", [device_b], ["state"], context=in_b)[0]["state"] == "active"
