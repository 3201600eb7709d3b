"""Life cycle of IoT invoices and items over XML-RPC, as the Billing user (an accountant with
the IoT Billing group) against a real Odoo server on the demo database. Every test makes its own
contract and device, billed in 2019, before any demo period."""

import re
import uuid
import xmlrpc.client
from datetime import date

import pytest
from bridge_fixtures import sql


@pytest.fixture(scope="module", name="billing_api")
def billing_api_fixture(odoo_server):
    group = odoo_server.rpc("ir.model.data", "search_read",
                            [("module", "=", "iot_contract"), ("name", "=", "group_iot_billing")], ["res_id"])
    login = "rpc-billing-" + uuid.uuid4().hex[:6]
    odoo_server.rpc("res.users", "create", {"name": "RPC Billing", "login": login, "password": login + "-pw",
                                           "groups_id": [(6, 0, [group[0]["res_id"]])]})
    uid = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/common").authenticate(
        odoo_server.db, login, login + "-pw", {})
    assert uid
    models = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/object", allow_none=True)

    def call(model, method, *args, **kwargs):
        return models.execute_kw(odoo_server.db, uid, login + "-pw", model, method, list(args), kwargs)

    return call


def _contract_with_device(odoo_server, billing_api, plan_values=None, **contract_values):
    """Set up by the administrator: a contract of its own, a monthly plan of 15.00 without tax,
    one device activated by the Billing user on 1 January 2019."""
    tag = uuid.uuid4().hex[:8]
    partner = odoo_server.rpc("res.partner", "create", {"name": "RPC life cycle " + tag})
    odoo_server.rpc("product.product", "create", {
        "name": "RPC plan " + tag, "default_code": "RPC-PLAN-" + tag, "type": "service", "list_price": 15.0,
        "iot_is_plan": True, "taxes_id": [(6, 0, [])], **(plan_values or {})})
    contract = odoo_server.rpc("iot.contract", "create", {
        "name": "RPC " + tag, "reference": "RPC-" + tag, "partner_id": partner, **contract_values})
    identifier = "RPCL-" + tag
    odoo_server.rpc("iot_billing.device", "api_register", [{"identifier": identifier, "partner": partner}])
    activated = billing_api("iot_billing.device", "api_activate", [
        {"identifier": identifier, "contract": "RPC-" + tag, "plan": "RPC-PLAN-" + tag, "date_start": "2019-01-01"}])
    assert "error" not in activated[0], activated
    return identifier, contract, activated[0]["contract_item_id"]


def _schedule(db, item_id, date_from):
    return sql(db, "SELECT state, invoice_id, fixed_line_id FROM iot_invoicing_schedule "
                   "WHERE contract_item_id = %s AND date_from = %s AND part != 'usage'", (item_id, date_from))[0]


def _invoices_of(billing_api, result, contract):
    reference = billing_api("iot.contract", "read", [contract], ["reference"])[0]["reference"]
    return billing_api("account.move", "search_read",
                       [("id", "in", result["invoice_ids"]), ("invoice_origin", "=", reference)],
                       ["name", "amount_total", "state"])


def test_cancelled_invoice_is_billed_again_over_xmlrpc(billing_api, odoo_server):
    _identifier, contract, item = _contract_with_device(odoo_server, billing_api)
    first = _invoices_of(billing_api, billing_api("iot.billing.run", "api_run", "2019-01-31"), contract)
    assert [(inv["amount_total"], inv["state"]) for inv in first] == [(15.0, "posted")]
    assert _schedule(odoo_server.db, item, "2019-01-01")[:2] == ("invoiced", first[0]["id"])

    billing_api("account.move", "button_cancel", [first[0]["id"]])
    assert _schedule(odoo_server.db, item, "2019-01-01") == ("planned", None, None)

    again = _invoices_of(billing_api, billing_api("iot.billing.run", "api_run", "2019-01-31"), contract)
    assert [(inv["amount_total"], inv["state"]) for inv in again] == [(15.0, "posted")]
    assert again[0]["id"] != first[0]["id"]
    assert _schedule(odoo_server.db, item, "2019-01-01")[:2] == ("invoiced", again[0]["id"])


def test_termination_credits_the_unused_days_over_xmlrpc(billing_api, odoo_server):
    identifier, contract, item = _contract_with_device(odoo_server, billing_api, fixed_fee_timing="advance")
    invoice = _invoices_of(billing_api, billing_api("iot.billing.run", "api_run", "2019-01-01"), contract)
    assert [(inv["amount_total"], inv["state"]) for inv in invoice] == [(15.0, "posted")]

    answer = billing_api("iot_billing.device", "api_terminate", [{"identifier": identifier, "date": "2019-01-10"}])
    assert answer == [{"identifier": identifier, "state": "terminated"}]
    refunds = billing_api("account.move", "search_read", [("iot_contract_id", "=", contract)],
                          ["name", "move_type", "state", "amount_total", "reversed_entry_id", "invoice_date"])
    assert len(refunds) == 1
    refund = refunds[0]
    today = date.today()
    # 21 unused days of 31: 15.00 - round(15.00 x 10 / 31) = 15.00 - 4.84
    assert (refund["move_type"], refund["state"], refund["amount_total"]) == ("out_refund", "posted", 10.16)
    assert refund["reversed_entry_id"][0] == invoice[0]["id"]
    assert refund["invoice_date"] == today.isoformat()
    assert re.fullmatch(r"RINV/%04d/%02d/\d{4}" % (today.year, today.month), refund["name"]), refund["name"]
    # The fee's schedule: with fees in advance, the period's usage has one of its own.
    credit_line = sql(odoo_server.db, "SELECT credit_line_id FROM iot_invoicing_schedule WHERE contract_item_id = %s"
                                      " AND date_from = '2019-01-01' AND part != 'usage'", (item,))[0][0]
    assert sql(odoo_server.db, "SELECT move_id FROM account_move_line WHERE id = %s", (credit_line,))[0][0] == (
        refund["id"])
