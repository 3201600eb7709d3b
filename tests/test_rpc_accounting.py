"""The README's accounting rules over XML-RPC, as the Billing user of a real server: amounts in
the contract's currency, a fiscal position adapting a price-included tax, runs in the future
refused. Set-up (currencies, taxes, plans) is done by the administrator, as in a real database."""

import uuid
import xmlrpc.client

import pytest
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN


@pytest.fixture(name="billing_rpc")
def billing_rpc_fixture(odoo_server):
    login = "billing-" + uuid.uuid4().hex[:8]
    password = login + "-password"
    [group] = odoo_server.rpc("ir.model.data", "search_read",
                              [("module", "=", "iot_contract"), ("name", "=", "group_iot_billing")], ["res_id"])
    odoo_server.rpc("res.users", "create", {"name": login, "login": login, "password": password,
                                            "groups_id": [(6, 0, [group["res_id"]])]})
    uid = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/common").authenticate(
        odoo_server.db, login, password, {})
    assert uid
    models = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/object", allow_none=True)

    def call(model, method, *args, **kwargs):
        return models.execute_kw(odoo_server.db, uid, password, model, method, list(args), kwargs)

    return call


def _admin(odoo_server, model, method, *args, **kwargs):
    return odoo_server.rpc(model, method, *args, **kwargs)


def _xmlid(odoo_server, module, name):
    [row] = _admin(odoo_server, "ir.model.data", "search_read",
                   [("module", "=", module), ("name", "=", name)], ["res_id"])
    return row["res_id"]


def _fleet(odoo_server, tag, plan_vals, contract_vals, rules=(), readings=()):
    """A plan, a contract and one device activated on 1 April 2022, with its readings."""
    code, reference, identifier = "PLAN-" + tag, "CONTRACT-" + tag, "DEV-" + tag
    plan = _admin(odoo_server, "product.product", "create", dict(
        {"name": "Plan " + tag, "default_code": code, "type": "service", "iot_is_plan": True,
         "taxes_id": [(6, 0, [])]}, **plan_vals))
    [template] = _admin(odoo_server, "product.product", "read", [plan], ["product_tmpl_id"])
    for rule in rules:
        _admin(odoo_server, "iot.usage.calculator", "create",
               dict(rule, product_tmpl_id=template["product_tmpl_id"][0]))
    partner = _xmlid(odoo_server, "iot_device", "partner_smart_city_demo")
    _admin(odoo_server, "iot.contract", "create", dict(
        {"name": reference, "reference": reference, "partner_id": partner, "invoice_grouping": "none"},
        **contract_vals))
    bridge = {"login": BRIDGE_LOGIN, "password": BRIDGE_KEY}
    odoo_server.rpc("iot_billing.device", "api_register", [{"identifier": identifier}], **bridge)
    [activated] = odoo_server.rpc("iot_billing.device", "api_activate", [
        {"identifier": identifier, "contract": reference, "plan": code, "date_start": "2022-04-01"}], **bridge)
    assert "error" not in activated, activated
    if readings:
        result = odoo_server.rpc("iot.usage", "api_ingest", [
            {"identifier": identifier, "metric": "kwh", "quantity": quantity, "timestamp": timestamp,
             "message_id": "%s-%d" % (tag, n)} for n, (quantity, timestamp) in enumerate(readings)], **bridge)
        assert result["accepted"] == len(readings), result
    return reference


def _billed(billing_rpc, reference):
    result = billing_rpc("iot.billing.run", "api_run", "2022-04-30")
    [invoice] = billing_rpc("account.move", "search_read",
                            [("id", "in", result["invoice_ids"]), ("invoice_origin", "=", reference)],
                            ["currency_id", "amount_untaxed", "amount_tax", "amount_total", "invoice_line_ids"])
    lines = billing_rpc("account.move.line", "read", invoice["invoice_line_ids"],
                        ["name", "quantity", "price_unit", "price_subtotal", "tax_ids"])
    return invoice, lines


def test_usage_is_billed_in_the_contract_currency(odoo_server, billing_rpc):
    tag = uuid.uuid4().hex[:6].upper()
    [sek] = _admin(odoo_server, "res.currency", "search", [("name", "=", "SEK")], context={"active_test": False})
    _admin(odoo_server, "res.currency", "write", [sek], {"active": True})
    company = _xmlid(odoo_server, "base", "main_company")
    for day, rate in (("2021-01-01", 10.0), ("2022-04-30", 11.0)):  # newer than the demo's 2010 rate
        _admin(odoo_server, "res.currency.rate", "create",
               {"currency_id": sek, "name": day, "rate": rate, "company_id": company})
    kwh = _xmlid(odoo_server, "iot_usage", "metric_kwh")
    reference = _fleet(odoo_server, tag, {"list_price": 15.0}, {"currency_id": sek},
                       rules=[{"name": "Energy", "metric_id": kwh, "unit_price": 0.5}],
                       readings=[("12", "2022-04-14T10:00:00Z")])
    invoice, lines = _billed(billing_rpc, reference)
    assert invoice["currency_id"][0] == sek
    # Fee: 15.00 x 10 (rate at the item's start); usage: 12 x 0.50 x 11 (rate at the invoice date).
    assert sorted(line["price_subtotal"] for line in lines) == [66.0, 150.0]
    assert invoice["amount_untaxed"] == 216.0


def test_a_fiscal_position_adapts_a_price_included_tax_as_a_manual_invoice_would(odoo_server, billing_rpc):
    tag = uuid.uuid4().hex[:6].upper()
    company = _xmlid(odoo_server, "base", "main_company")
    included = _admin(odoo_server, "account.tax", "create", {
        "name": "VAT 21% incl. " + tag, "amount": 21, "type_tax_use": "sale",
        "price_include_override": "tax_included", "company_id": company})
    zero = _admin(odoo_server, "account.tax", "create", {
        "name": "Export 0% " + tag, "amount": 0, "type_tax_use": "sale", "company_id": company})
    position = _admin(odoo_server, "account.fiscal.position", "create", {
        "name": "Export " + tag, "company_id": company,
        "tax_ids": [(0, 0, {"tax_src_id": included, "tax_dest_id": zero})]})
    reference = _fleet(odoo_server, tag, {"list_price": 15.0, "taxes_id": [(6, 0, [included])]},
                       {"fiscal_position_id": position})
    invoice, [fee] = _billed(billing_rpc, reference)
    assert (fee["price_unit"], fee["tax_ids"], invoice["amount_total"]) == (12.4, [zero], 12.4)
    # The same product on a manual invoice with the same fiscal position.
    [plan] = billing_rpc("product.product", "search", [("default_code", "=", "PLAN-" + tag)])
    partner = _xmlid(odoo_server, "iot_device", "partner_smart_city_demo")
    manual = billing_rpc("account.move", "create", {
        "move_type": "out_invoice", "partner_id": partner, "fiscal_position_id": position,
        "invoice_date": "2022-04-30", "invoice_line_ids": [(0, 0, {"product_id": plan})]})
    [manual] = billing_rpc("account.move", "read", [manual], ["amount_total", "amount_tax"])
    assert (manual["amount_total"], manual["amount_tax"]) == (invoice["amount_total"], invoice["amount_tax"])


def test_a_run_in_the_future_is_refused(billing_rpc):
    with pytest.raises(xmlrpc.client.Fault, match="after today"):
        billing_rpc("iot.billing.run", "api_run", "2099-01-01")
