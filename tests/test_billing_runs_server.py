"""Billing runs on a real Odoo server with cron threads: killed mid-run, resumed; valuation meanwhile.

Each test bills the contracts of a company of its own, in one-contract chunks, with a
second Odoo process that runs the chunk crons (two cron threads: two workers on one
run). The session server (no cron thread) only sets the data up. While a test runs,
every other cron of the database is paused, so that nothing but billing runs there.
"""

import time

import psycopg2
import pytest
from bridge_fixtures import (
    OdooServer,
    chunk_crons,
    company_with_plan,
    run_status,
    sql,
    wait_run_finished,
    wait_until,
    wake_crons,
)

from odoo.addons.iot_contract.tools import LOCK_NAMESPACE

CONTRACTS = 30
MONTHS = ("2023-01-31", "2023-02-28", "2023-03-31")


@pytest.fixture(name="fleet")
def fleet_fixture(odoo_server):
    """A company of its own with CONTRACTS running contracts, one item each from January 2023."""
    rpc = odoo_server.rpc
    tag, company, context, partner, plan = company_with_plan(rpc, "Runs")
    contracts = rpc("iot.contract", "create", [
        {"name": "Runs %d" % index, "reference": "RUNS-%s-%d" % (tag, index), "partner_id": partner,
         "auto_post": False} for index in range(CONTRACTS)], context=context)
    rpc("iot.contract.item", "create", [
        {"contract_id": contract, "product_id": plan, "date_start": "2023-01-01", "name": "Item %d" % contract}
        for contract in contracts], context=context)
    rpc("iot.contract", "write", contracts, {"state": "running"}, context=context)
    return {"company": company, "contracts": contracts, "context": context}


def _billed(db, contracts):
    """Per schedule of these contracts due by March: (state, invoice) and the invoice lines per schedule."""
    return sql(db, """
        SELECT s.id, s.state, s.invoice_id,
               (SELECT count(*) FROM account_move_line l
                 WHERE l.move_id = s.invoice_id AND l.display_type = 'product')
          FROM iot_invoicing_schedule s
         WHERE s.contract_id = ANY(%s) AND s.invoice_date <= '2023-03-31'""", (contracts,))


def _chunk_cron_calls(db):
    return sql(db, "SELECT count(*) FROM ir_cron_progress WHERE cron_id = ANY(%s)", (chunk_crons(db),))[0][0]


def test_run_killed_mid_run_resumes_and_bills_each_schedule_once(
        odoo_server, server_db, bridge_workdir, fleet, only_billing_crons):
    context = fleet["context"]
    answer = odoo_server.rpc("iot.billing.run", "api_run", MONTHS[-1], context=context)
    assert answer["state"] == "running", answer  # CONTRACTS one-contract chunks: not one chunk
    assert answer["invoice_ids"] == [] and answer["schedules_remaining"] == CONTRACTS * len(MONTHS)
    run_id = answer["run_id"]

    workers = OdooServer(server_db, bridge_workdir, cron_threads=2)
    workers.start()
    try:
        wake_crons(server_db)
        wait_until(lambda: run_status(odoo_server, run_id, context)["chunks"] >= 3, 120, interval=0.05,
                   message="three chunks committed")
        workers.kill()  # SIGKILL: no cleanup, whatever the chunk in progress held is rolled back
        before = run_status(odoo_server, run_id, context)
        assert before["state"] == "running" and before["schedules_remaining"] > 0, before
        assert before["schedules_done"] == len(before["invoice_ids"]), before  # one invoice per schedule here

        workers = OdooServer(server_db, bridge_workdir, cron_threads=2)
        workers.start()

        after = wait_run_finished(odoo_server, server_db, run_id, context, "the run to finish after the restart")
    finally:
        workers.stop()

    assert after["state"] == "done", after
    assert after["errors"] == [] and after["schedules_skipped"] == 0
    assert after["schedules_done"] == CONTRACTS * len(MONTHS) and after["schedules_remaining"] == 0
    assert after["chunks"] > before["chunks"]
    billed = _billed(server_db, fleet["contracts"])
    assert len(billed) == CONTRACTS * len(MONTHS)
    assert {state for _id, state, _invoice, _lines in billed} == {"invoiced"}, "none forgotten"
    invoices = [invoice for _id, _state, invoice, _lines in billed]
    assert len(set(invoices)) == len(invoices) == len(after["invoice_ids"]), "none billed twice"
    assert {lines for *_rest, lines in billed} == {1}
    assert sorted(after["invoice_ids"]) == sorted(invoices)
    # Prepared once, finished once: one "done" state change in the chatter, one summary.
    messages = odoo_server.rpc("mail.message", "search_read",
                               [("model", "=", "iot.billing.run"), ("res_id", "=", run_id)], ["body"])
    assert sum("Billed %d schedules" % (CONTRACTS * len(MONTHS)) in message["body"] for message in messages) == 1
    workers_seen = {row[0] for row in sql(server_db, "SELECT worker FROM iot_billing_run_chunk WHERE run_id = %s",
                                          (run_id,))}
    assert len(workers_seen) >= 2, "the chunks were billed by the first and the restarted process"


def test_run_waits_for_the_valuation_and_skips_nothing(
        odoo_server, server_db, bridge_workdir, fleet, only_billing_crons):
    context = fleet["context"]
    workers = OdooServer(server_db, bridge_workdir, cron_threads=2)
    workers.start()
    try:
        # The valuation of the company's running periods, as the daily cron does it: the
        # company's lock, then its schedules updated, in a transaction still open.
        valuation = psycopg2.connect(host="127.0.0.1", user="root", dbname=server_db)
        try:
            with valuation.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, fleet["company"]))
                cursor.execute("UPDATE iot_invoicing_schedule SET write_date = now() WHERE contract_id = ANY(%s)",
                               (fleet["contracts"],))
            calls_before = _chunk_cron_calls(server_db)
            answer = odoo_server.rpc("iot.billing.run", "api_run", MONTHS[-1], context=context)
            assert answer["state"] == "running"
            wake_crons(server_db)
            wait_until(lambda: _chunk_cron_calls(server_db) > calls_before, 90, message="a chunk cron call")
            time.sleep(2)  # the workers try the lock again every second
            held = run_status(odoo_server, answer["run_id"], context)
            assert (held["state"], held["chunks"], held["schedules_done"]) == ("running", 0, 0), held
            valuation.commit()
        finally:
            valuation.close()

        after = wait_run_finished(odoo_server, server_db, answer["run_id"], context,
                               "the run to finish after the valuation")
    finally:
        workers.stop()
    assert (after["state"], after["schedules_skipped"], after["errors"]) == ("done", 0, []), after
    assert after["schedules_done"] == CONTRACTS * len(MONTHS)
    assert {state for _id, state, _invoice, _lines in _billed(server_db, fleet["contracts"])} == {"invoiced"}


ITEMS = 20
STEP = 6  # schedules per step: the contract's 60 due schedules take 10 stages and 10 links


@pytest.fixture(name="big_contract")
def big_contract_fixture(odoo_server, server_db):
    """A company of its own with one contract of ITEMS items from January 2023, grouped by plan
    and period, larger than a step; steps of STEP schedules while the test runs."""
    rpc = odoo_server.rpc
    tag, company, context, partner, plan = company_with_plan(rpc, "Steps")
    contract = rpc("iot.contract", "create", {"name": "Steps", "reference": "STEPS-" + tag, "partner_id": partner,
                                              "invoice_grouping": "plan_period", "auto_post": True}, context=context)
    rpc("iot.contract.item", "create", [
        {"contract_id": contract, "product_id": plan, "date_start": "2023-01-01", "name": "Item %d" % index}
        for index in range(ITEMS)], context=context)
    rpc("iot.contract", "write", [contract], {"state": "running"}, context=context)
    sql(server_db, """
        INSERT INTO ir_config_parameter (key, value, create_uid, write_uid, create_date, write_date)
        VALUES ('iot_contract.billing_chunk_schedules', %s, 1, 1, now(), now())
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value""", (str(STEP),))
    try:
        yield {"company": company, "contract": contract, "context": context}
    finally:
        sql(server_db, "DELETE FROM ir_config_parameter WHERE key = 'iot_contract.billing_chunk_schedules'")


def test_contract_billed_in_steps_killed_mid_run_resumes_exactly_once(
        odoo_server, server_db, bridge_workdir, big_contract, only_billing_crons):
    context, contract = big_contract["context"], big_contract["contract"]
    answer = odoo_server.rpc("iot.billing.run", "api_run", MONTHS[-1], context=context)
    assert answer["state"] == "running", answer
    run_id = answer["run_id"]
    workers = OdooServer(server_db, bridge_workdir, cron_threads=2)
    workers.start()
    try:
        wake_crons(server_db)
        wait_until(lambda: run_status(odoo_server, run_id, context)["chunks"] >= 4, 120, interval=0.05,
                   message="four steps committed")
        workers.kill()
        before = run_status(odoo_server, run_id, context)
        assert before["state"] == "running" and before["schedules_remaining"] == ITEMS * len(MONTHS), before
        staged = sql(server_db, "SELECT count(*) FROM iot_invoicing_schedule WHERE contract_id = %s "
                                "AND state = 'billing'", (contract,))[0][0]
        assert staged >= 3 * STEP, "the committed steps staged their schedules"

        workers = OdooServer(server_db, bridge_workdir, cron_threads=2)
        workers.start()

        after = wait_run_finished(odoo_server, server_db, run_id, context, "the run to finish after the restart")
    finally:
        workers.stop()

    assert (after["state"], after["errors"], after["schedules_skipped"]) == ("done", [], 0), after
    assert after["schedules_done"] == ITEMS * len(MONTHS) and after["schedules_remaining"] == 0
    billed = _billed(server_db, [contract])
    assert {state for _id, state, _invoice, _lines in billed} == {"invoiced"}, "none forgotten"
    # One invoice per month, one grouped line of the month's twenty fees on each.
    assert sorted(after["invoice_ids"]) == sorted({invoice for _id, _state, invoice, _lines in billed})
    assert len(after["invoice_ids"]) == len(MONTHS) and {lines for *_rest, lines in billed} == {1}
    invoices = sql(server_db, "SELECT state, amount_untaxed, (SELECT array_agg(quantity) FROM account_move_line "
                              "WHERE move_id = m.id AND display_type = 'product') FROM account_move m "
                              "WHERE id = ANY(%s)", (after["invoice_ids"],))
    assert {(state, float(untaxed), tuple(quantities)) for state, untaxed, quantities in invoices} == {
        ("posted", ITEMS * 10.0, (float(ITEMS),))}, "each fee on its invoice once"
    assert sql(server_db, "SELECT count(*) FROM iot_invoicing_schedule WHERE contract_id = %s "
                          "AND fixed_line_id IS NULL AND invoice_date <= %s", (contract, MONTHS[-1]))[0][0] == 0
    assert sql(server_db, "SELECT count(*) FROM iot_billing_run_part WHERE run_id = %s", (run_id,))[0][0] == 0
    assert sql(server_db, "SELECT count(*) FROM iot_billing_run_line WHERE run_id = %s", (run_id,))[0][0] == 0
    workers_seen = {row[0] for row in sql(server_db, "SELECT worker FROM iot_billing_run_chunk WHERE run_id = %s",
                                          (run_id,))}
    assert len(workers_seen) >= 2, "the steps were taken by the first and the restarted process"
