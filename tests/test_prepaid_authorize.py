"""The authorization API of prepaid credit through a real Odoo server (the demo database):
POST /iot/authorize, /iot/authorize/confirm and /iot/authorize/release, called with an
Odoo API key of the Integration user as a device platform calls them.

Answers are JSON whatever happens: refusals are HTTP 200 with a reason, malformed input
HTTP 400, a wrong key HTTP 401. Holds expire by themselves; two platforms asking at the same
time on one wallet (two HTTP clients in threads, a server with several workers) never hold
more than its balance.
"""

import threading
import uuid
from datetime import date
from decimal import Decimal

import pytest
import requests
from bridge_fixtures import BRIDGE_KEY, BRIDGE_LOGIN, OdooServer, free_port, sql
from passlib.context import CryptContext

# As Odoo hashes API keys (res_users.KEY_CRYPT_CONTEXT): the key is made here, once, as
# the key wizard would, so that the test needs no interactive password check.
API_KEY_CONTEXT = CryptContext(["pbkdf2_sha512"], pbkdf2_sha512__rounds=6000)


def make_api_key(db, login):
    key = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    sql(db, """
        INSERT INTO res_users_apikeys (name, user_id, scope, key, index)
        SELECT 'prepaid test', id, NULL, %s, %s FROM res_users WHERE login = %s""",
        (API_KEY_CONTEXT.hash(key), key[:8], login))
    return key


@pytest.fixture(scope="module", name="api_key")
def api_key_fixture(server_db):
    return make_api_key(server_db, BRIDGE_LOGIN)


class Platform:
    """A device platform's client of the authorization API: one keep-alive HTTP session."""

    def __init__(self, url, key):
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + key

    def post(self, path, body=None, data=None):
        response = self.session.post(self.url + path, json=body, data=data, timeout=60)
        assert response.headers["Content-Type"].startswith("application/json"), response.text[:500]
        return response.status_code, response.json()

    def authorize(self, identifier, quantity, metric="kwh"):
        status, answer = self.post("/iot/authorize", {"identifier": identifier, "metric": metric,
                                                      "quantity": quantity})
        assert status == 200, answer
        return answer

    def confirm(self, reservation_id, quantity):
        status, answer = self.post("/iot/authorize/confirm", {"reservation_id": reservation_id, "quantity": quantity})
        assert status == 200, answer
        return answer

    def release(self, reservation_id):
        status, answer = self.post("/iot/authorize/release", {"reservation_id": reservation_id})
        assert status == 200, answer
        return answer


def prepaid_contract(rpc, label, identifiers, credit, unit_price=0.5, plan_prepaid=True):
    """A running contract on a prepaid plan (energy at ``unit_price`` a kWh, no tax) with the
    devices ``identifiers`` active since the month began, and ``credit`` granted (a promotion)."""
    tag = uuid.uuid4().hex[:6].upper()
    partner = rpc("res.partner", "create", {"name": "%s customer %s" % (label, tag)})
    plan = rpc("product.product", "create", {
        "name": "%s plan %s" % (label, tag), "default_code": "%s-%s" % (label, tag), "type": "service",
        "list_price": 0.0, "iot_is_plan": True, "iot_prepaid": plan_prepaid, "taxes_id": [(6, 0, [])]})
    template = rpc("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
    metric = rpc("iot.usage.metric", "search", [("code", "=", "kwh")])[0]
    rpc("iot.usage.calculator", "create", {"name": "Energy", "product_tmpl_id": template, "metric_id": metric,
                                           "pricing": "per_unit", "unit_price": unit_price})
    contract = rpc("iot.contract", "create", {"name": "%s %s" % (label, tag), "reference": "%s-%s" % (label, tag),
                                             "partner_id": partner, "tz": "UTC"})
    rpc("iot.contract", "write", [contract], {"state": "running"})
    rpc("iot_billing.device", "api_register", [{"identifier": i, "partner": partner} for i in identifiers],
        login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    activated = rpc("iot_billing.device", "api_activate", [
        {"identifier": i, "contract": "%s-%s" % (label, tag), "plan": "%s-%s" % (label, tag),
         "date_start": date.today().replace(day=1).isoformat()} for i in identifiers],
        login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    assert all("error" not in entry for entry in activated), activated
    wallet = rpc("iot.wallet", "create", {"contract_id": contract})
    if credit:
        rpc("iot.wallet.grant", "create", {"wallet_id": wallet, "amount": credit, "kind": "promotion"})
    return {"contract": contract, "wallet": wallet, "plan": plan}


def wallet_figures(db, wallet):
    """(balance, sum of the ledger's balance entries, open holds not yet expired) as Decimals."""
    rows = sql(db, """
        SELECT wallet.balance::text,
               (SELECT coalesce(sum(amount), 0) FROM iot_wallet_entry
                 WHERE wallet_id = wallet.id AND kind IN ('grant', 'debit', 'expiry', 'adjustment'))::text,
               (SELECT coalesce(sum(amount), 0) FROM iot_wallet_reservation
                 WHERE wallet_id = wallet.id AND state = 'open' AND expires_at > now() at time zone 'utc')::text
          FROM iot_wallet wallet WHERE wallet.id = %s""", (wallet,))
    return tuple(Decimal(value) for value in rows[0])


def hold_state(db, reservation_id):
    return sql(db, "SELECT state FROM iot_wallet_reservation WHERE id = %s", (reservation_id,))[0][0]


def test_authorize_confirm_release(odoo_server, api_key):
    rpc, db = odoo_server.rpc, odoo_server.db
    tag = uuid.uuid4().hex[:6].upper()
    charger, other = "EVC-%s-1" % tag, "EVC-%s-2" % tag
    setup = prepaid_contract(rpc, "EVC", [charger, other], credit=10.0)
    platform = Platform(odoo_server.url, api_key)

    first = platform.authorize(charger, "5")  # 5 kWh at 0.50
    assert first["authorized"] is True and first["amount"] == 2.5, first
    assert first["balance"] == 10.0 and first["available"] == 7.5
    assert first["expires_at"].endswith("Z")
    second = platform.authorize(other, 12.5)
    assert second["authorized"] is True and second["amount"] == 6.25 and second["available"] == 1.25, second
    refused = platform.authorize(charger, "3")  # 1.50 > 1.25 available
    assert refused == {"authorized": False, "reason": "no credit", "balance": 10.0, "available": 1.25,
                       "amount": 1.5}

    # 4.2 kWh used of the 5 held: stored as a reading, rated (2.10 debited), hold closed.
    confirmed = platform.confirm(first["reservation_id"], "4.2")
    assert confirmed == {"confirmed": True, "reservation_id": first["reservation_id"], "quantity": 4.2,
                         "balance": 7.9, "available": 1.65}, confirmed
    again = platform.confirm(first["reservation_id"], "4.2")  # a retry counts once
    assert again == confirmed
    assert platform.confirm(first["reservation_id"], "5")["reason"] == "reservation already confirmed with quantity 4.2"
    readings = sql(db, """SELECT count(*), sum(u.quantity)::text FROM iot_usage u
                           JOIN iot_billing_device d ON d.id = u.device_id WHERE d.identifier = %s""", (charger,))
    assert readings[0] == (1, "4.200000")
    assert wallet_figures(db, setup["wallet"]) == (Decimal("7.90"), Decimal("7.90"), Decimal("6.25"))

    released = platform.release(second["reservation_id"])
    assert released == {"released": True, "reservation_id": second["reservation_id"], "balance": 7.9,
                        "available": 7.9}
    assert platform.release(second["reservation_id"])["released"] is True  # nothing more to release
    assert platform.confirm(second["reservation_id"], 1) == {"confirmed": False, "reason": "reservation released"}
    assert platform.release(first["reservation_id"]) == {"released": False, "reason": "reservation confirmed"}
    assert platform.release(10**9) == {"released": False, "reason": "unknown reservation"}
    states = dict(sql(db, "SELECT id, state FROM iot_wallet_reservation WHERE wallet_id = %s", (setup["wallet"],)))
    assert states == {first["reservation_id"]: "confirmed", second["reservation_id"]: "released"}
    balance, ledger, held = wallet_figures(db, setup["wallet"])
    assert balance == ledger == Decimal("7.90") and held == 0
    # The wallet as the Billing group sees it.
    wallet = rpc("iot.wallet", "read", [setup["wallet"]], ["balance", "reserved", "available"])[0]
    assert (wallet["balance"], wallet["reserved"], wallet["available"]) == (7.9, 0.0, 7.9)


def test_refusals_have_reasons(odoo_server, api_key):
    rpc = odoo_server.rpc
    tag = uuid.uuid4().hex[:6].upper()
    prepaid, blocked, postpaid = "RF-%s-P" % tag, "RF-%s-B" % tag, "RF-%s-N" % tag
    prepaid_contract(rpc, "RFP", [prepaid, blocked], credit=1.0)
    prepaid_contract(rpc, "RFN", [postpaid], credit=0, plan_prepaid=False)
    rpc("iot_billing.device", "api_suspend", [{"identifier": blocked}], login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    unplugged = "RF-%s-U" % tag
    rpc("iot_billing.device", "api_register", [{"identifier": unplugged}], login=BRIDGE_LOGIN, password=BRIDGE_KEY)
    platform = Platform(odoo_server.url, api_key)

    def reason(identifier, **extra):
        answer = platform.authorize(identifier, extra.pop("quantity", 1), **extra)
        assert answer["authorized"] is False, answer
        return answer["reason"]

    assert reason("NO-SUCH-%s" % tag) == "unknown device"
    assert reason(blocked) == "device blocked"
    assert reason(unplugged) == "device not active"
    assert reason(prepaid, metric="no-such-metric") == "unknown metric"
    assert reason(postpaid) == "not prepaid"
    assert reason(prepaid, quantity=3) == "no credit"  # 1.50 > 1.00
    assert platform.authorize(prepaid, 2)["authorized"] is True  # exactly the 1.00 left
    assert reason(prepaid, quantity="0.02") == "no credit"  # 0.01 > 0.00


def test_bad_input_and_bad_key_are_json_errors(odoo_server, api_key):
    platform = Platform(odoo_server.url, api_key)
    for body, message in (
        ({"metric": "kwh", "quantity": 1}, "missing 'identifier'"),
        ({"identifier": "X", "quantity": 1}, "missing 'metric'"),
        ({"identifier": "X", "metric": "kwh"}, "'quantity' must be a number or a decimal string"),
        ({"identifier": "X", "metric": "kwh", "quantity": "lots"}, "quantity 'lots' is not a number"),
        ({"identifier": "X", "metric": "kwh", "quantity": -1}, "quantity -1 is negative"),
        ({"identifier": "X", "metric": "kwh", "quantity": 0}, "'quantity' must be positive"),
        ([1, 2], "the body must be a JSON object"),
    ):
        status, answer = platform.post("/iot/authorize", body)
        assert (status, answer) == (400, {"error": message}), body
    status, answer = platform.post("/iot/authorize", data=b"{not json")
    assert status == 400 and answer["error"].startswith("the body is not JSON")
    status, answer = platform.post("/iot/authorize/confirm", {"reservation_id": "7", "quantity": 1})
    assert (status, answer) == (400, {"error": "'reservation_id' must be a positive integer"})
    status, answer = platform.post("/iot/authorize/release", {})
    assert (status, answer) == (400, {"error": "'reservation_id' must be a positive integer"})

    for headers in ({"Authorization": "Bearer not-a-key"}, {}):
        response = requests.post(odoo_server.url + "/iot/authorize", json={"identifier": "X", "metric": "kwh",
                                                                          "quantity": 1}, headers=headers, timeout=30)
        assert response.status_code == 401 and response.headers["Content-Type"] == "application/json"
        assert "error" in response.json()
    # A key checked once is remembered by the worker; revoked, it fails at once all the same.
    revoked = make_api_key(odoo_server.db, BRIDGE_LOGIN)
    assert Platform(odoo_server.url, revoked).authorize("NO-SUCH-DEVICE", 1)["reason"] == "unknown device"
    sql(odoo_server.db, "DELETE FROM res_users_apikeys WHERE index = %s", (revoked[:8],))
    status, answer = Platform(odoo_server.url, revoked).post("/iot/authorize", {"identifier": "X", "metric": "kwh",
                                                                                "quantity": 1})
    assert (status, answer) == (401, {"error": "invalid API key"})
    response = platform.session.get(odoo_server.url + "/iot/authorize", timeout=30)
    assert response.status_code == 405 and response.json() == {"error": "use POST with a JSON body"}


def test_a_hold_expires_by_itself(odoo_server, api_key):
    rpc, db = odoo_server.rpc, odoo_server.db
    tag = uuid.uuid4().hex[:6].upper()
    device = "EXP-%s" % tag
    setup = prepaid_contract(rpc, "EXP", [device], credit=5.0)
    platform = Platform(odoo_server.url, api_key)
    held = platform.authorize(device, 8)  # 4.00 of 5.00
    assert held["authorized"] is True and held["available"] == 1.0
    assert platform.authorize(device, 4)["reason"] == "no credit"
    # The hold's time passes (the company's hold time is minutes; the test moves the clock of
    # the hold rather than waiting).
    sql(db, "UPDATE iot_wallet_reservation SET expires_at = now() at time zone 'utc' - interval '1 second' "
            "WHERE id = %s", (held["reservation_id"],))
    # Expired: its credit is available to the next authorization, which also closes it.
    again = platform.authorize(device, 4)
    assert again["authorized"] is True and again["available"] == 3.0, again
    assert hold_state(db, held["reservation_id"]) == "expired"
    # The cron closes the others (here: the second hold, expired in its turn).
    sql(db, "UPDATE iot_wallet_reservation SET expires_at = now() at time zone 'utc' - interval '1 second' "
            "WHERE id = %s", (again["reservation_id"],))
    cron = rpc("ir.model.data", "check_object_reference", "iot_prepaid", "iot_wallet_reservation_expire_cron")[1]
    rpc("ir.cron", "method_direct_trigger", [cron])
    assert hold_state(db, again["reservation_id"]) == "expired"
    # A use confirmed after its hold expired is still a use: rated and debited.
    confirmed = platform.confirm(again["reservation_id"], 2)
    assert confirmed["confirmed"] is True and confirmed["balance"] == 4.0
    assert wallet_figures(db, setup["wallet"]) == (Decimal("4.00"), Decimal("4.00"), Decimal("0"))
    assert platform.release(held["reservation_id"])["released"] is True  # expired: nothing to release


@pytest.fixture(name="threaded_server")
def threaded_server_fixture(server_db, bridge_workdir, odoo_server):
    """A second server on the same database with prefork workers, as deployments run Odoo:
    requests run in parallel processes."""
    server = OdooServer(server_db, bridge_workdir, workers=3, gevent_port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_concurrent_authorizations_never_overdraw(threaded_server, odoo_server, api_key):
    """Two platforms ask for one wallet at the same time, round after round: each round's
    credit allows one of the two asks, never both; the holds never exceed the balance."""
    rpc, db = odoo_server.rpc, odoo_server.db
    tag = uuid.uuid4().hex[:6].upper()
    devices = ["RACE-%s-%d" % (tag, n) for n in range(2)]
    setup = prepaid_contract(rpc, "RACE", devices, credit=10.0)
    platforms = [Platform(threaded_server.url, api_key) for _device in devices]
    # 5.00 of the 10.00 stay held: each round asks 3.00 and 4.00 (6 and 8 kWh) against 5.00.
    assert platforms[0].authorize(devices[0], 10)["authorized"] is True
    winners = set()
    for round_ in range(40):
        barrier = threading.Barrier(2)
        answers = [None, None]

        def ask(position, quantity, barrier=barrier, answers=answers):
            barrier.wait()
            answers[position] = platforms[position].authorize(devices[position], quantity)

        threads = [threading.Thread(target=ask, args=(0, 6)), threading.Thread(target=ask, args=(1, 8))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        granted = [answer for answer in answers if answer["authorized"]]
        assert len(granted) == 1, (round_, answers)
        assert [answer["reason"] for answer in answers if not answer["authorized"]] == ["no credit"]
        balance, ledger, held = wallet_figures(db, setup["wallet"])
        assert balance == ledger == Decimal("10.00")
        assert held == Decimal("5.00") + Decimal(str(granted[0]["amount"])) <= balance
        winners.add(answers.index(granted[0]))
        assert platforms[0].release(granted[0]["reservation_id"])["released"] is True
    assert wallet_figures(db, setup["wallet"])[2] == Decimal("5.00")
    assert winners  # who wins a round is the scheduler's choice: either may, none twice held


def test_concurrent_storm_on_one_wallet(threaded_server, odoo_server, api_key):
    """Eight clients ask small holds as fast as they can on one wallet: the sum of the holds
    granted never exceeds the balance, and every ask is answered."""
    rpc, db = odoo_server.rpc, odoo_server.db
    tag = uuid.uuid4().hex[:6].upper()
    devices = ["STORM-%s-%d" % (tag, n) for n in range(8)]
    setup = prepaid_contract(rpc, "STORM", devices, credit=20.0)
    answers, lock = [], threading.Lock()

    def client(device):
        platform = Platform(threaded_server.url, api_key)
        for _ in range(15):
            answer = platform.authorize(device, 1.4)  # 0.70 each: 28 of 120 asks fit in 20.00
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=client, args=(device,)) for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted = [answer for answer in answers if answer["authorized"]]
    assert len(answers) == 120 and len(granted) == 28, len(granted)
    assert {answer["reason"] for answer in answers if not answer["authorized"]} == {"no credit"}
    balance, ledger, held = wallet_figures(db, setup["wallet"])
    assert balance == ledger == Decimal("20.00") and held == Decimal("19.60")
    assert min(answer["available"] for answer in granted) == pytest.approx(0.4)
