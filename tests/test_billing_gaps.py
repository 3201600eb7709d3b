"""A billing run keeps its workers billing while work is left (issue 23): on a real Odoo server
with two cron threads at Odoo's default limits, one run of 1,000 one-device contracts leaves no
moment longer than a second, from its start to its last chunk's end, in which no chunk was being
billed. Read from the chunk rows: each chunk ran from its transaction's start (``create_date``)
for ``duration`` seconds, on its ``worker``. The run starts for its workers when ``api_run`` has
answered (its transaction committed): the request's own work (counting the due schedules,
queuing the run) is not idle time, the wait for the first chunk after it is.

The session server (no cron thread) sets the data up and starts the run; the chunk crons run
in a second Odoo process, woken only by the run itself (no test pokes them: a chunk cron left
waiting for its next poll would show as a gap); every other cron of the database is paused.
"""

import datetime

import pytest
from bridge_fixtures import OdooServer, company_with_plan, run_status, sql, wait_until

# The shipped chunk size (read by the only_billing_crons fixture): 20 chunks of 50 contracts.
from odoo.addons.iot_contract.models.iot_billing_engine import CHUNK_CONTRACTS

CONTRACTS = 1000
RUN_DATE = "2023-03-31"
LONGEST_GAP = 1.0  # seconds


@pytest.fixture(name="customers")
def customers_fixture(odoo_server):
    """A company of its own with CONTRACTS running one-item contracts from March 2023, posted on
    billing: one invoice each. Created in batches, one call per model."""
    rpc = odoo_server.rpc
    tag, _company, context, partner, plan = company_with_plan(rpc, "Gaps")
    contracts = rpc("iot.contract", "create", [
        {"name": "Gaps %d" % index, "reference": "GAPS-%s-%d" % (tag, index), "partner_id": partner,
         "auto_post": True} for index in range(CONTRACTS)], context=context)
    rpc("iot.contract.item", "create", [
        {"contract_id": contract, "product_id": plan, "date_start": "2023-03-01", "name": "Device %d" % contract}
        for contract in contracts], context=context)
    rpc("iot.contract", "write", contracts, {"state": "running"}, context=context)
    return {"contracts": contracts, "context": context}


def idle_gaps(start, chunks):
    """The holes in the union of the chunks' intervals from ``start`` to the last chunk's end:
    [(seconds from start, length, worker before, worker after)] of every hole."""
    gaps = []
    covered, last_worker = start, "the run's start"
    for begin, end, worker in sorted(chunks):
        if begin > covered:
            gaps.append(((covered - start).total_seconds(), (begin - covered).total_seconds(), last_worker, worker))
        if end > covered:
            covered, last_worker = end, worker
    return gaps


def test_idle_gaps_finds_the_holes_between_overlapping_chunks():
    start = datetime.datetime(2023, 3, 31, 12, 0, 0)

    def at(seconds):
        return start + datetime.timedelta(seconds=seconds)

    chunks = [(at(0.5), at(3), "a"), (at(1), at(2), "b"), (at(3.2), at(5), "b"), (at(6.5), at(7), "a")]
    assert idle_gaps(start, chunks) == [(0.0, 0.5, "the run's start", "a"), (3.0, 0.2, "a", "b"),
                                        (5.0, 1.5, "b", "a")]
    assert idle_gaps(start, [(at(0), at(4), "a"), (at(1), at(2), "b"), (at(4), at(5), "b")]) == []


def test_run_of_a_thousand_contracts_leaves_no_gap_between_chunks(
        odoo_server, server_db, bridge_workdir, customers, only_billing_crons):
    context = customers["context"]
    workers = OdooServer(server_db, bridge_workdir, cron_threads=2)
    workers.start()
    try:
        answer = odoo_server.rpc("iot.billing.run", "api_run", RUN_DATE, context=context)
        started = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # as the database's UTC timestamps
        assert answer["state"] == "running", answer  # more than one chunk: left to the chunk crons
        run_id = answer["run_id"]

        def finished():
            status = run_status(odoo_server, run_id, context)
            return status if status["state"] != "running" else None

        after = wait_until(finished, 600, interval=1, message="the run of %d contracts" % CONTRACTS)
    finally:
        workers.stop()

    assert (after["state"], after["errors"], after["schedules_skipped"]) == ("done", [], 0), after
    assert after["schedules_done"] == CONTRACTS and len(after["invoice_ids"]) == CONTRACTS
    chunks = sql(server_db, """
        SELECT create_date, create_date + duration * interval '1 second', worker
          FROM iot_billing_run_chunk WHERE run_id = %s""", (run_id,))
    assert len(chunks) >= CONTRACTS // CHUNK_CONTRACTS, "the run was billed in chunks of at most %d contracts" % (
        CHUNK_CONTRACTS)
    gaps = [gap for gap in idle_gaps(started, chunks) if gap[1] > LONGEST_GAP]
    last_end = (max(end for _begin, end, _worker in chunks) - started).total_seconds()
    assert not gaps, "%d moments over %.1f s without a chunk while work was left (%d chunks, the last ending " \
        "%.1f s after the run's start):\n%s" % (len(gaps), LONGEST_GAP, len(chunks), last_end, "\n".join(
            "  %.2f s from %.2f s after the start, after %s, before %s" % (length, at, before, following)
            for at, length, before, following in gaps))
