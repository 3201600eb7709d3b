"""Prepaid authorization under load (issue 24): POST /iot/authorize from a second process.

Odoo runs with prefork workers and its default limits. The load generator is open-loop: each
request has its due time (rate-controlled), is sent on a connection of its own (Odoo's
HTTP/1.0 server closes each after its answer), and its latency counts from its due time, so a
server that falls behind shows it (no coordinated omission). Over 10,000 devices and 1,000 wallets (ten devices per
prepaid contract). Afterwards the ledger is checked: no wallet holds more than its balance, and
every balance is the sum of its entries.

Then freshness (a batch's debit in the balance the moment its ingestion RPC returns) and the
ingestion of 10,000-reading batches on prepaid items against postpaid items, alternately.

    flock /tmp/iot-bench.lock python3 bench/authorize.py [--rates 200,1000] [--seconds 20]
"""

import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from passlib.context import CryptContext  # noqa: E402

UNIT_PRICE = 0.5
CREDIT = 10.0  # 20 holds of 1 kWh per wallet: at 1,000 requests/s the wallets run out (refusals)
API_KEY_CONTEXT = CryptContext(["pbkdf2_sha512"], pbkdf2_sha512__rounds=6000)  # as res_users.KEY_CRYPT_CONTEXT


def setup(db, server, tag, devices, wallets):
    """Prepaid and postpaid plans, 1,000 prepaid contracts of ten devices with credit, and
    1,000 postpaid devices for the ingestion baseline. Returns the identifiers."""
    client = server.client()
    metric = client("iot.usage.metric", "search", [("code", "=", "kwh")])
    if not metric:
        metric = [client("iot.usage.metric", "create", {"code": "kwh", "name": "Energy"})]
    plans = {}
    for kind, prepaid in (("pre", True), ("post", False)):
        code = "AUTH-%s-%s" % (kind.upper(), tag)
        plan = client("product.product", "create", {
            "name": code, "default_code": code, "type": "service", "list_price": 0.0, "iot_is_plan": True,
            "iot_prepaid": prepaid, "iot_duration_months": 1, "taxes_id": [(6, 0, [])]})
        template = client("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
        client("iot.usage.calculator", "create", {"name": "Energy", "product_tmpl_id": template,
                                                  "metric_id": metric[0], "pricing": "per_unit",
                                                  "unit_price": UNIT_PRICE})
        plans[kind] = code
    partner = client("res.partner", "create", {"name": "Authorization bench " + tag})
    contracts = ["AUTH-%s-%04d" % (tag, n) for n in range(wallets + 1)]  # the last one: postpaid
    ids = client("iot.contract", "create", [{"name": ref, "reference": ref, "partner_id": partner, "tz": "UTC"}
                                            for ref in contracts])
    client("iot.contract", "write", ids, {"state": "running"})
    per_wallet = devices // wallets
    prepaid = ["AUTH-%s-D%05d" % (tag, n) for n in range(devices)]
    postpaid = ["AUTH-%s-P%05d" % (tag, n) for n in range(max(1, devices // 10))]
    start = date.today().replace(day=1).isoformat()
    for chunk in range(0, len(prepaid) + len(postpaid), 2000):
        identifiers = (prepaid + postpaid)[chunk:chunk + 2000]
        client("iot_billing.device", "api_register", [{"identifier": i} for i in identifiers])
        answer = client("iot_billing.device", "api_activate", [
            {"identifier": i, "contract": contracts[n // per_wallet] if n < devices else contracts[-1],
             "plan": plans["pre"] if n < devices else plans["post"], "date_start": start}
            for n, i in enumerate(identifiers, start=chunk)])
        assert all("error" not in entry for entry in answer), [e for e in answer if "error" in e][:3]
    wallets = client("iot.wallet", "create", [{"contract_id": contract_id} for contract_id in ids[:-1]])
    client("iot.wallet.grant", "create", [{"wallet_id": wallet, "amount": CREDIT, "kind": "promotion"}
                                          for wallet in wallets])
    return prepaid, postpaid, wallets


def api_key(db, login="admin"):
    key = uuid.uuid4().hex + uuid.uuid4().hex[:8]
    benchlib.sql(db, "INSERT INTO res_users_apikeys (name, user_id, scope, key, index) "
                     "SELECT 'bench', id, NULL, %s, %s FROM res_users WHERE login = %s",
                 (API_KEY_CONTEXT.hash(key), key[:8], login))
    return key


async def post(port, path, body, key):
    """One request on its own connection: Odoo's HTTP server speaks HTTP/1.0 and closes the
    connection after each response (a deployment's proxy keeps the clients' connections)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        payload = json.dumps(body).encode()
        writer.write(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                      % (path, key, len(payload))).encode() + payload)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        return status, json.loads(await reader.readexactly(length))
    finally:
        writer.close()


async def load(port, key, identifiers, rate, seconds, max_in_flight=200):
    """Send ``rate`` authorizations a second for ``seconds``: ``(latencies s, outcomes, errors,
    achieved rate, most requests in flight)``."""
    latencies, outcomes, errors = [], {}, []
    in_flight, most = [0], [0]
    total = int(rate * seconds)
    started = time.monotonic() + 0.2
    slots = asyncio.Semaphore(max_in_flight)

    async def one(number):
        due = started + number / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        async with slots:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            try:
                status, answer = await post(port, "/iot/authorize", {
                    "identifier": random.choice(identifiers), "metric": "kwh", "quantity": 1}, key)
                latencies.append(time.monotonic() - due)
                if status != 200:
                    errors.append((status, answer))
                else:
                    outcome = "authorized" if answer["authorized"] else answer["reason"]
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                errors.append(("exception", repr(error)))
            finally:
                in_flight[0] -= 1

    await asyncio.gather(*(one(number) for number in range(total)))
    return latencies, outcomes, errors, total / (time.monotonic() - started), most[0]


def ledger_check(db, wallets):
    """Wallets holding more than their balance, and wallets whose balance is not their entries' sum."""
    rows = benchlib.sql(db, """
        SELECT wallet.id, wallet.balance,
               (SELECT coalesce(sum(amount), 0) FROM iot_wallet_reservation
                 WHERE wallet_id = wallet.id AND state = 'open' AND expires_at > now() at time zone 'utc'),
               (SELECT coalesce(sum(amount), 0) FROM iot_wallet_entry
                 WHERE wallet_id = wallet.id AND kind IN ('grant', 'debit', 'expiry', 'adjustment'))
          FROM iot_wallet wallet WHERE wallet.id = ANY(%s)""", (wallets,))
    overdrawn = [row for row in rows if row[2] > row[1]]
    unbalanced = [row for row in rows if row[1] != row[3]]
    return overdrawn, unbalanced, min(row[1] - row[2] for row in rows)


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def readings(identifiers, count, tag, hour):
    moment = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hour)
    return [{"identifier": identifiers[n % len(identifiers)], "metric": "kwh", "quantity": "0.01",
             "timestamp": (moment + timedelta(milliseconds=n)).isoformat(), "message_id": "%s-%d" % (tag, n)}
            for n in range(count)]


def freshness(db, client, prepaid, wallets, rounds=20):
    """Each round: one ingestion RPC of 100 readings on one wallet's devices, then at once the
    wallet's balance read from the database: ``[(seconds from the RPC's return to the read,
    debit missing from the balance)]``."""
    results = []
    for number in range(rounds):
        wallet_devices = prepaid[number * 10:number * 10 + 10]
        before = Decimal(benchlib.sql(db, "SELECT balance FROM iot_wallet WHERE id = %s", (wallets[number],))[0][0])
        answer = client("iot.usage", "api_ingest", readings(wallet_devices, 100, "fresh-%d" % number, 1))
        returned = time.monotonic()
        after = Decimal(benchlib.sql(db, "SELECT balance FROM iot_wallet WHERE id = %s", (wallets[number],))[0][0])
        read_at = time.monotonic()
        assert answer["accepted"] == 100, answer
        expected = Decimal("100") * Decimal("0.01") * Decimal(str(UNIT_PRICE))  # 0.50
        results.append((read_at - returned, expected - (before - after)))
    return results


def ingestion(client, prepaid, postpaid, size, rounds=3):
    """``size``-reading batches, prepaid devices and postpaid devices alternately: readings/s each."""
    rates = {"prepaid": [], "postpaid": []}
    for number in range(rounds):
        for kind, identifiers in (("prepaid", prepaid), ("postpaid", postpaid)):
            batch = readings(identifiers, size, "ingest-%s-%d" % (kind, number), 2 + number)
            started = time.monotonic()
            answer = client("iot.usage", "api_ingest", batch)
            rates[kind].append(size / (time.monotonic() - started))
            assert answer["accepted"] == size, answer
    return rates


def main():
    parser = benchlib.parser(__doc__.splitlines()[0])
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--devices", type=int, default=10000)
    parser.add_argument("--wallets", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=10000, help="readings per ingestion batch")
    args = parser.parse_args()
    db = args.db if args.db != benchlib.DEFAULT_DB else "bench_prepaid"
    benchlib.ensure_database(db, reset=args.reset)
    print("machine:", benchlib.machine())
    tag = uuid.uuid4().hex[:6].upper()
    with benchlib.OdooServer(db, workers=args.workers, cron_workers=0, log_path="/tmp/bench-authorize.log") as server:
        started = time.monotonic()
        prepaid, postpaid, wallets = setup(db, server, tag, args.devices, args.wallets)
        print("setup: %d prepaid devices on %d wallets, %d postpaid devices (%.0f s)"
              % (len(prepaid), len(wallets), len(postpaid), time.monotonic() - started))
        key = api_key(db)
        rows = []
        # A short warm-up: every worker loads its registry before anything is timed.
        asyncio.run(load(server.port, key, prepaid, 50, 2))
        for rate in [int(value) for value in args.rates.split(",")]:
            latencies, outcomes, errors, achieved, most = asyncio.run(
                load(server.port, key, prepaid, rate, args.seconds))
            overdrawn, unbalanced, least = ledger_check(db, wallets)
            rows.append([rate, "%.0f" % achieved, len(latencies), "%.1f" % (statistics.median(latencies) * 1000),
                         "%.1f" % (percentile(latencies, 0.99) * 1000), "%.1f" % (max(latencies) * 1000),
                         len(errors), outcomes.get("authorized", 0), outcomes.get("no credit", 0), most,
                         len(overdrawn), len(unbalanced), least])
            if errors:
                print("errors at %d/s (first 3):" % rate, errors[:3])
        benchlib.print_table(
            "Authorizations (open loop, %g s per rate, %d workers)" % (args.seconds, args.workers),
            ["asked/s", "achieved/s", "answers", "p50 ms", "p99 ms", "max ms", "errors", "authorized", "no credit",
             "most in flight", "wallets overdrawn", "balance != ledger", "least available"], rows)

        client = server.client()
        fresh = freshness(db, client, prepaid, wallets)
        benchlib.print_table(
            "Freshness: the balance read right after the ingestion RPC returns (20 rounds of 100 readings)",
            ["rounds", "debit missing from the balance", "median read delay ms"],
            [[len(fresh), sum(missing for _d, missing in fresh), "%.2f" % (statistics.median(
                delay for delay, _m in fresh) * 1000)]])
        rates = ingestion(client, prepaid, postpaid, args.batch)
        benchlib.print_table(
            "Ingestion, %d-reading batches (alternately)" % args.batch,
            ["items", "readings/s per round", "median"],
            [[kind, ", ".join("%.0f" % rate for rate in values), "%.0f" % statistics.median(values)]
             for kind, values in rates.items()])
        print("prepaid / postpaid: %.2f" % (statistics.median(rates["prepaid"]) / statistics.median(rates["postpaid"])))
        overdrawn, unbalanced, least = ledger_check(db, wallets)
        print("after everything: %d wallets hold more than their balance, %d balances differ from their ledger"
              % (len(overdrawn), len(unbalanced)))


if __name__ == "__main__":
    main()
