"""Privacy by role over the external API: a *Billing (counts only)* user reads the subscription
counts over XML-RPC and is refused every device, reading, event and contract item, whatever the
call (search, read, grouped read, name search, export)."""

import uuid
import xmlrpc.client

import pytest
from bridge_fixtures import sql

REFUSED_MODELS = ["iot_billing.device", "iot_billing.device.event", "iot_billing.device.command",
                  "iot.contract", "iot.contract.item", "iot.invoicing.schedule", "iot.usage", "iot.usage.bucket",
                  "iot_billing.device.user", "iot.contract.item.preset", "iot.wallet.entry"]


@pytest.fixture(name="counts_api")
def counts_api_fixture(odoo_server):
    login, password = "counts-" + uuid.uuid4().hex[:8], "counts-" + uuid.uuid4().hex
    group = odoo_server.rpc("ir.model.data", "check_object_reference", "iot_privacy", "group_iot_billing_counts")[1]
    export = odoo_server.rpc("ir.model.data", "check_object_reference", "base", "group_allow_export")[1]
    odoo_server.rpc("res.users", "create", {"name": "Counts Only", "login": login, "password": password,
                                            "groups_id": [(6, 0, [group, export])]})
    uid = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/common").authenticate(
        odoo_server.db, login, password, {})
    assert uid, "the counts-only user must authenticate"
    models = xmlrpc.client.ServerProxy(odoo_server.url + "/xmlrpc/2/object", allow_none=True)

    def call(model, method, *args, **kwargs):
        return models.execute_kw(odoo_server.db, uid, password, model, method, list(args), kwargs)

    call.login = login
    return call


def test_counts_read_over_rpc_match_the_schedules(counts_api, odoo_server):
    rows = counts_api("iot.subscription.count.report", "search_read", [],
                      ["contract_reference", "product_id", "period_month", "device_count", "amount_total"])
    assert rows, "the demo contracts have periods"
    got = {(row["contract_reference"], row["product_id"][0], row["period_month"][:7]):
           (row["device_count"], round(row["amount_total"], 2)) for row in rows}
    grouped = sql(
        odoo_server.db,
        """SELECT contract.reference, item.product_id, to_char(schedule.date_from, 'YYYY-MM'),
                  count(DISTINCT item.device_id), round(sum(schedule.amount_total), 2)
             FROM iot_invoicing_schedule schedule
             JOIN iot_contract_item item ON item.id = schedule.contract_item_id
             JOIN iot_contract contract ON contract.id = item.contract_id
            WHERE schedule.state != 'cancelled'
              AND schedule.company_id = (SELECT company_id FROM res_users WHERE login = %s)
            GROUP BY 1, 2, 3""", (counts_api.login,))
    expected = {(reference, product_id, month): (count, float(amount))
                for reference, product_id, month, count, amount in grouped}
    assert got == expected
    assert "contract_id" not in counts_api("iot.subscription.count.report", "fields_get", attributes=["type"])


@pytest.mark.parametrize("model", REFUSED_MODELS)
def test_device_data_refused_over_rpc(counts_api, odoo_server, model):
    some_id = (odoo_server.rpc(model, "search", [], limit=1) or [1])[0]
    calls = [
        ("search_read", [[]], {"fields": ["display_name"]}),
        ("search_count", [[]], {}),
        ("read", [[some_id], ["display_name"]], {}),
        ("read_group", [[], ["id:count"], []], {}),
        ("name_search", [""], {}),
        ("export_data", [[some_id], ["display_name"]], {}),
    ]
    for method, args, kwargs in calls:
        with pytest.raises(xmlrpc.client.Fault) as refused:
            counts_api(model, method, *args, **kwargs)
        assert "AccessError" in refused.value.faultString or "not allowed" in refused.value.faultString, (
            model, method, refused.value.faultString[:300])
