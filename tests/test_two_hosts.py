"""One billing run on two hosts: two Odoo processes, each in a network namespace of its own
(tests/netns_hosts.py), both running the chunk crons of one run against one PostgreSQL.

One cron thread per host: the run's two chunk crons are then held one by each host (Odoo
gives a cron job to one worker at a time). The session server (no cron thread) sets the
data up and starts the run; every other cron of the database is paused meanwhile.
"""

import re
import tempfile

import pytest
from bridge_fixtures import company_with_plan, run_status, sql, wait_run_finished
from netns_hosts import HostedOdoo, NamespaceHost, namespaces_problem

CONTRACTS = 240
CHUNK_CONTRACTS = 4  # read by the only_billing_crons fixture: 60 chunks
RUN_DATE = "2023-03-31"


@pytest.fixture(name="hosts")
def hosts_fixture():
    """Two hosts; whatever runs in them is ended and they are removed, whatever the outcome."""
    problem = namespaces_problem()
    if problem:
        pytest.fail("two hosts need network namespaces on this machine: %s" % problem)
    hosts = [NamespaceHost("a"), NamespaceHost("b")]
    try:
        for host in hosts:
            host.create()
        yield hosts
    finally:
        for host in hosts:
            host.destroy()


@pytest.fixture(name="customers")
def customers_fixture(odoo_server):
    """A company of its own with CONTRACTS running one-item contracts from March 2023, posted on
    billing: one invoice each, numbered in the company's one sales journal."""
    rpc = odoo_server.rpc
    tag, company, context, partner, plan = company_with_plan(rpc, "Hosts")
    contracts = rpc("iot.contract", "create", [
        {"name": "Hosts %d" % index, "reference": "HOSTS-%s-%d" % (tag, index), "partner_id": partner,
         "auto_post": True} for index in range(CONTRACTS)], context=context)
    rpc("iot.contract.item", "create", [
        {"contract_id": contract, "product_id": plan, "date_start": "2023-03-01", "name": "Device %d" % contract}
        for contract in contracts], context=context)
    rpc("iot.contract", "write", contracts, {"state": "running"}, context=context)
    return {"contracts": contracts, "context": context}


def test_one_run_on_two_hosts_bills_each_schedule_once(odoo_server, server_db, hosts, customers,
                                                      only_billing_crons):
    context, contracts = customers["context"], customers["contracts"]
    with tempfile.TemporaryDirectory(prefix="iot-hosts-") as workdir:
        servers = [HostedOdoo(host, server_db, workdir, cron_threads=1) for host in hosts]
        try:
            for server in servers:
                server.start()
            answer = odoo_server.rpc("iot.billing.run", "api_run", RUN_DATE, context=context)
            assert answer["state"] == "running", answer  # more than one chunk: left to the chunk crons
            run_id = answer["run_id"]
            after = wait_run_finished(odoo_server, server_db, run_id, context, "the run on two hosts")
        finally:
            for server in servers:
                server.stop()

    assert (after["state"], after["errors"], after["schedules_skipped"]) == ("done", [], 0), after
    assert after["schedules_done"] == CONTRACTS and after["schedules_remaining"] == 0
    assert run_status(odoo_server, run_id, context)["state"] == "done"

    # Every due schedule billed, each on one invoice of its own, its fee on one line of it.
    schedules = sql(server_db, """
        SELECT s.id, s.state, s.invoice_id, l.move_id,
               (SELECT count(*) FROM account_move_line p WHERE p.move_id = s.invoice_id AND p.display_type = 'product')
          FROM iot_invoicing_schedule s LEFT JOIN account_move_line l ON l.id = s.fixed_line_id
         WHERE s.contract_id = ANY(%s) AND s.invoice_date <= %s""", (contracts, RUN_DATE))
    assert len(schedules) == CONTRACTS
    assert {state for _id, state, *_rest in schedules} == {"invoiced"}, "none forgotten"
    assert all(invoice and fee_move == invoice for _id, _state, invoice, fee_move, _lines in schedules)
    invoices = sorted(invoice for _id, _state, invoice, *_rest in schedules)
    assert len(set(invoices)) == CONTRACTS and invoices == sorted(after["invoice_ids"]), "none billed twice"
    assert {lines for *_rest, lines in schedules} == {1}, "one line per fee"
    moves = sql(server_db, "SELECT count(*), count(DISTINCT name), count(*) FILTER (WHERE state = 'posted') "
                           "FROM account_move WHERE iot_billing_run_id = %s", (run_id,))[0]
    assert moves == (CONTRACTS,) * 3, "one posted invoice per contract, each with a number of its own"

    # Both hosts billed chunks, and nothing else did: each chunk's worker is hostname:pid/thread.
    chunks = sql(server_db, "SELECT worker, contract_count FROM iot_billing_run_chunk WHERE run_id = %s", (run_id,))
    by_host = {server.host.name: 0 for server in servers}
    pids = {server.process.pid: server.host.name for server in servers}
    for worker, contract_count in chunks:
        hostname, pid = re.fullmatch(r"(.+):(\d+)/.+", worker).groups()
        assert pids.get(int(pid)) == hostname, "chunk %r billed by neither host's process %s" % (worker, pids)
        by_host[hostname] += contract_count
    assert all(by_host.values()), "both hosts billed chunks: %s" % by_host
    assert sum(by_host.values()) == CONTRACTS, by_host
