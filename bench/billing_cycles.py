#!/usr/bin/env python3
"""Bill cycles and threshold invoicing at consumer scale: the busiest day, the periods held.

    python3 bench/billing_cycles.py --db cycles_bench [--anniversary 30000] [--days 30] [--calendar N]
        [--threshold 10000] [--skip anniversary,calendar,threshold,may,all_held] [--reuse-setup] [--port 8470]

Every scenario runs on a fresh copy of the benchmark database, on a real Odoo (prefork, 2 HTTP
workers, 2 cron workers, Odoo's default limits); one-device contracts (a customer, a contract, a
device each) are set up through the API (partners and contracts created in batches, devices
registered, activated and sent their readings in batches of 10,000). The daily billing cron is
played by ``api_run(day)`` for each day (and turned off, with the end-of-term cron: they would
bill and renew with today's date); a run is followed with ``api_status`` until done.

Anniversary (--anniversary N): N contracts on a 12-month plan at 9.99 on the *anniversary* cycle
with an energy rule, devices activated in March 2022 on days 1-28 (twice as many as on each of
the 29th, 30th and 31st), one reading each on its first day: every first period ends on its own
day (started on the 17th: billed 17 March - 16 April), so 30 daily runs, 31 March - 29 April,
bill each contract once, two lines an invoice (--days K: only the first K of them; each of the
first 28 is a busiest day, ~1/29.5 of the contracts). Baseline, same run: the same contracts on
the *calendar* cycle: every first period ends on 31 March, one run bills them all (--calendar N:
N such contracts instead, e.g. as many as the busiest day's, a run of the same size).

Threshold (--threshold N): N contracts from 1 April 2022, 80 % on a plan at 9.90 and 20 % at
29.90 (calendar cycle), an energy rule at 0.01/kWh and one reading a month of 0-40 kWh; the
company's invoicing level is 20.00. April's run invoices the 20 % and holds the 80 %; May's run
invoices the held periods with May's where the two reach 20.00. Baselines, same run: the same
April run without a level (every contract invoiced) and with a level of 1,000 (every contract
held: what holding costs alone). --reuse-setup: the contracts of an earlier run's set-up database
(``<db>_thr``, left unchanged by the scenarios, which bill copies of it), if it has as many.

Checks in every run: the run is done without error; its invoices are exactly the contracts due
that day (counted from the activation dates); every schedule due by the run's date is invoiced or
held (none left planned and due); each invoice is posted, dated the day, carries the lines
expected and an untaxed total equal to its schedules'; no schedule is on two invoices (each fee
line and usage valuation is on its schedule's own invoice).
"""

import time
from collections import Counter
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import psycopg2
from benchlib import OdooServer, ensure_database, fresh_copy, machine, parser, print_table, sql
from dateutil.relativedelta import relativedelta

BATCH = 10000
CONTRACT_BATCH = 2000
MARCH = date(2022, 3, 1)
# Activation days in March: each of 1-28 twice as often as each of 29-31 (not every month has them).
START_DAYS = [*range(1, 29)] * 2 + [29, 30, 31]
LEVEL = Decimal("20.00")
THRESHOLD_PLANS = {"BASIC": Decimal("9.90"), "PLUS": Decimal("29.90")}
USAGE_PRICE = Decimal("0.01")
CYCLE_PRICE = Decimal("9.99")
CENT = Decimal("0.01")
# Crons left out: the daily run and the end of term work on today's date, the benchmark on 2022's.
DATED_CRONS = ("iot_billing_run_cron", "iot_contract_item_end_of_term_cron")


def rounded(seconds):
    return ", ".join("%s %.0f s" % (step, value) for step, value in seconds.items())


def load_average():
    with open("/proc/loadavg", encoding="ascii") as handle:
        return float(handle.read().split()[0])


def batches(items, size):
    return [items[start:start + size] for start in range(0, len(items), size)]


def copy_database(template, name):
    """``fresh_copy``, once the server that used ``template`` has let go of its connections."""
    for _attempt in range(30):
        try:
            return fresh_copy(template, name)
        except psycopg2.errors.ObjectInUse:
            time.sleep(1)
    return fresh_copy(template, name)


def prepared_copy(template, name):
    db = copy_database(template, name)
    sql(db, "UPDATE ir_cron SET active = false WHERE id IN (SELECT res_id FROM ir_model_data "
            "WHERE model = 'ir.cron' AND module = 'iot_contract' AND name = ANY(%s))", [list(DATED_CRONS)])
    return db


def create_plan(client, code, price, cycle, unit_price):
    plan = client("product.product", "create", {
        "name": "Plan " + code, "default_code": code, "type": "service", "list_price": float(price),
        "iot_is_plan": True, "iot_duration_months": 12, "iot_bill_cycle": cycle})
    template = client("product.product", "read", [plan], ["product_tmpl_id"])[0]["product_tmpl_id"][0]
    metric = client("iot.usage.metric", "search", [("code", "=", "kwh")])[0]
    client("iot.usage.calculator", "create", {"name": "Energy", "product_tmpl_id": template, "metric_id": metric,
                                              "pricing": "per_unit", "unit_price": float(unit_price)})


def setup_contracts(client, contracts):
    """One partner, contract and device per entry of ``contracts`` (dicts: reference, plan,
    date_start, readings [(timestamp, kWh)]), through the API in batches; returns the seconds of
    each step."""
    seconds = {}
    began = time.monotonic()
    for batch in batches(contracts, CONTRACT_BATCH):
        partners = client("res.partner", "create", [{"name": "Customer " + entry["reference"]} for entry in batch])
        ids = client("iot.contract", "create", [
            {"name": entry["reference"], "reference": entry["reference"], "partner_id": partner}
            for entry, partner in zip(batch, partners, strict=True)])
        client("iot.contract", "action_start", ids)
    seconds["partners and contracts"] = time.monotonic() - began
    began = time.monotonic()
    for batch in batches(contracts, BATCH):
        client("iot_billing.device", "api_register", [{"identifier": entry["reference"]} for entry in batch])
        result = client("iot_billing.device", "api_activate", [
            {"identifier": entry["reference"], "contract": entry["reference"], "plan": entry["plan"],
             "date_start": entry["date_start"].isoformat()} for entry in batch])
        errors = [answer for answer in result if "error" in answer]
        assert not errors, errors[:3]
    seconds["devices registered and activated"] = time.monotonic() - began
    began = time.monotonic()
    readings = [
        {"identifier": entry["reference"], "metric": "kwh", "quantity": str(quantity), "timestamp": timestamp,
         "message_id": "%s-%d" % (entry["reference"], number)}
        for entry in contracts for number, (timestamp, quantity) in enumerate(entry["readings"])]
    for batch in batches(readings, BATCH):
        answer = client("iot.usage", "api_ingest", batch)
        assert answer["accepted"] == len(batch) and not answer["rejected"], answer["rejected"][:3]
    seconds["readings"] = time.monotonic() - began
    return seconds


def run_billing(client, db, day):
    """api_run(day), followed until done; the run's figures."""
    began = time.monotonic()
    status = client("iot.billing.run", "api_run", day.isoformat())
    while status["state"] == "running":
        time.sleep(0.25)
        status = client("iot.billing.run", "api_status", status["run_id"])
    elapsed = time.monotonic() - began
    assert status["state"] == "done" and not status["errors"], (status["state"], status["errors"][:3])
    chunks, worker_seconds, longest = sql(
        db, "SELECT count(*), coalesce(sum(duration), 0), coalesce(max(duration), 0) FROM iot_billing_run_chunk "
            "WHERE run_id = %s", [status["run_id"]])[0]
    return {"day": day, "seconds": elapsed, "invoices": status["invoice_ids"], "run_id": status["run_id"],
            "held": status.get("schedules_held", 0), "done": status["schedules_done"], "chunks": chunks,
            "worker_seconds": worker_seconds, "longest_chunk": longest, "load": load_average()}


def check_run(db, run, expected_invoices, expected_untaxed, lines_per_invoice=None):
    """The invariants of a run (module docstring), and its invoices' untaxed total against the
    amounts computed here from the prices and readings; returns the invoices' line count."""
    day, invoices = run["day"], run["invoices"]
    assert len(invoices) == expected_invoices, (day, len(invoices), expected_invoices)
    (untaxed,) = sql(db, "SELECT coalesce(sum(amount_untaxed), 0) FROM account_move WHERE id = ANY(%s)",
                     [invoices])[0]
    assert Decimal(untaxed).quantize(CENT) == expected_untaxed, (day, untaxed, expected_untaxed)
    (left,) = sql(db, "SELECT count(*) FROM iot_invoicing_schedule WHERE state IN ('planned', 'billing') "
                      "AND invoice_date <= %s", [day])[0]
    assert left == 0, "%d schedules due by %s neither invoiced nor held" % (left, day)
    if not invoices:
        return 0
    bad = sql(db, """
        SELECT move.id, move.state, move.invoice_date, move.amount_untaxed,
               (SELECT sum(amount_total) FROM iot_invoicing_schedule WHERE invoice_id = move.id),
               (SELECT count(*) FROM account_move_line WHERE move_id = move.id AND display_type = 'product'),
               (SELECT count(DISTINCT contract_id) FROM iot_invoicing_schedule WHERE invoice_id = move.id)
          FROM account_move move WHERE move.id = ANY(%s)
           AND (move.state != 'posted' OR move.invoice_date != %s
                OR round(move.amount_untaxed, 2) != round((SELECT sum(amount_total) FROM iot_invoicing_schedule
                                                            WHERE invoice_id = move.id), 2)
                OR (SELECT count(DISTINCT contract_id) FROM iot_invoicing_schedule WHERE invoice_id = move.id) != 1
                OR (%s IS NOT NULL AND (SELECT count(*) FROM account_move_line WHERE move_id = move.id
                                        AND display_type = 'product') != %s))
         LIMIT 3""", [invoices, day, lines_per_invoice, lines_per_invoice])
    assert not bad, (day, bad)
    (lines,) = sql(db, "SELECT count(*) FROM account_move_line WHERE move_id = ANY(%s) AND display_type = 'product'",
                   [invoices])[0]
    return lines


def check_exactly_once(db):
    """No schedule on two invoices: every fee line and usage valuation is on its schedule's invoice."""
    (misplaced,) = sql(db, """
        SELECT (SELECT count(*) FROM iot_invoicing_schedule schedule
                  JOIN account_move_line line ON line.id = schedule.fixed_line_id
                 WHERE line.move_id IS DISTINCT FROM schedule.invoice_id)
             + (SELECT count(*) FROM iot_usage_valuation valuation
                  JOIN iot_invoicing_schedule schedule ON schedule.id = valuation.schedule_id
                  JOIN account_move_line line ON line.id = valuation.move_line_id
                 WHERE line.move_id IS DISTINCT FROM schedule.invoice_id)
             + (SELECT count(*) FROM iot_invoicing_schedule WHERE state = 'invoiced' AND invoice_id IS NULL
                   AND fixed_amount != 0)""")[0]
    assert misplaced == 0, "%d fee lines or valuations on another invoice than their schedule's" % misplaced


def server(args, db):
    return OdooServer(db, workers=2, cron_workers=2, port=args.port, log_path="/tmp/cycles-odoo.log")


# ----------------------------------------------------------------------
# Anniversary against calendar
# ----------------------------------------------------------------------
def cycle_contracts(size, prefix):
    return [{"reference": "%s-%06d" % (prefix, n), "plan": "CYCLE",
             "date_start": MARCH.replace(day=START_DAYS[n % len(START_DAYS)]),
             "readings": [("2022-03-%02dT12:00:00Z" % START_DAYS[n % len(START_DAYS)], Decimal(1 + n % 97))]}
            for n in range(size)]


def first_period(entry, cycle):
    """(invoice date, untaxed amount) of the contract's first period: a full anniversary period,
    or on the calendar cycle the rest of March, its fee prorated (README, rule 1)."""
    start = entry["date_start"]
    usage = USAGE_PRICE * entry["readings"][0][1]
    if cycle == "anniversary":
        return start + relativedelta(months=1, days=-1), CYCLE_PRICE + usage
    days = 31 - start.day + 1
    fee = CYCLE_PRICE if days == 31 else (CYCLE_PRICE * days / 31).quantize(CENT, ROUND_HALF_UP)
    return start + relativedelta(day=31), fee + usage


def cycle_scenario(args, cycle):
    db = prepared_copy(args.db, args.db + "_" + cycle[:3])
    size = args.anniversary if cycle == "anniversary" else args.calendar or args.anniversary
    contracts = cycle_contracts(size, cycle[:3].upper())
    due, amounts = Counter(), Counter()
    for entry in contracts:
        day, amount = first_period(entry, cycle)
        due[day] += 1
        amounts[day] += amount
    # Calendar: the month-end run, then the next day's, which finds nothing due (what a run costs
    # beside its invoices, over the same schedules).
    days = [date(2022, 3, 31) + timedelta(days=n) for n in range(args.days if cycle == "anniversary" else 2)]
    with server(args, db) as odoo:
        client = odoo.client()
        create_plan(client, "CYCLE", Decimal("9.99"), cycle, USAGE_PRICE)
        setup = setup_contracts(client, contracts)
        print("  %s: %d contracts set up: %s" % (cycle, len(contracts), rounded(setup)), flush=True)
        runs = []
        for day in days:
            run = run_billing(client, db, day)
            run["lines"] = check_run(db, run, due[day], Decimal(amounts[day]).quantize(CENT), lines_per_invoice=2)
            runs.append(run)
            print("    %s: %d invoices in %.1f s (%d chunks, longest %.1f s; load %.1f)" % (
                day, len(run["invoices"]), run["seconds"], run["chunks"], run["longest_chunk"], run["load"]),
                flush=True)
        check_exactly_once(db)
        # Each contract due by the last run billed once: one invoice, its first period's.
        billed = sum(due[day] for day in days)
        invoiced = sql(db, "SELECT count(*), count(DISTINCT contract_id), count(DISTINCT invoice_id) "
                           "FROM iot_invoicing_schedule WHERE state = 'invoiced'")[0]
        assert invoiced == (billed,) * 3, (invoiced, billed)
    return {"cycle": cycle, "setup": setup, "runs": runs, "contracts": len(contracts)}


def report_cycles(anniversary, calendar):
    runs = anniversary["runs"] if anniversary else []
    if runs:
        print_table("Anniversary cycle: one daily run per day (api_run(day), 2 cron workers)",
                    ["day", "invoices", "lines", "run s", "ms / invoice", "chunks", "longest chunk s",
                     "chunk s summed", "load"],
                    [[run["day"], len(run["invoices"]), run["lines"], "%.1f" % run["seconds"],
                      "%.1f" % (1000 * run["seconds"] / len(run["invoices"])) if run["invoices"] else "-",
                      run["chunks"], "%.1f" % run["longest_chunk"], "%.1f" % run["worker_seconds"],
                      "%.1f" % run["load"]] for run in runs])
    rows = []
    big = calendar["runs"][0] if calendar else None
    # The time of a run against the calendar run's says something only for the same contracts.
    same_contracts = bool(anniversary and calendar) and anniversary["contracts"] == calendar["contracts"]
    if runs:
        busiest = max(runs, key=lambda run: (len(run["invoices"]), run["seconds"]))
        slowest = max(runs, key=lambda run: run["seconds"])
        total = sum(run["seconds"] for run in runs)
        invoices = sum(len(run["invoices"]) for run in runs)
        for label, seconds, count, chunk_seconds in [
            ("busiest day (%s)" % busiest["day"], busiest["seconds"], len(busiest["invoices"]),
             busiest["worker_seconds"]),
            ("slowest day (%s)" % slowest["day"], slowest["seconds"], len(slowest["invoices"]),
             slowest["worker_seconds"]),
            ("the %d daily runs, summed" % len(runs), total, invoices, sum(run["worker_seconds"] for run in runs)),
        ]:
            rows.append([label, count, "%.1f" % seconds, "%.1f" % (1000 * seconds / count),
                         "%.1f" % (1000 * chunk_seconds / count),
                         "%.3f" % (seconds / big["seconds"]) if same_contracts else "-",
                         "%.2f" % ((seconds / count) / (big["seconds"] / len(big["invoices"]))) if big else "-"])
    if calendar:
        empty = calendar["runs"][1]
        rows.append(["calendar (%d contracts): the month-end run (%s)" % (calendar["contracts"], big["day"]),
                     len(big["invoices"]),
                     "%.1f" % big["seconds"], "%.1f" % (1000 * big["seconds"] / len(big["invoices"])),
                     "%.1f" % (1000 * big["worker_seconds"] / len(big["invoices"])), "1.000", "1.00"])
        rows.append(["calendar: the next day's run (%s, nothing due)" % empty["day"], 0, "%.1f" % empty["seconds"],
                     "-", "-", "%.3f" % (empty["seconds"] / big["seconds"]), "-"])
    print_table("Anniversary against calendar (baseline: the calendar month-end run, same run of the script)",
                ["run", "invoices", "s", "ms / invoice", "chunk ms / invoice", "time / calendar run",
                 "per invoice / calendar"], rows)


# ----------------------------------------------------------------------
# Threshold invoicing
# ----------------------------------------------------------------------
def threshold_contracts(size):
    contracts = []
    for n in range(size):
        april, may = (n * 7) % 41, (n * 13) % 41
        contracts.append({
            "reference": "THR-%06d" % n, "plan": "PLUS" if n % 5 == 0 else "BASIC", "date_start": date(2022, 4, 1),
            "readings": [("2022-04-15T12:00:00Z", Decimal(april)), ("2022-05-15T12:00:00Z", Decimal(may))]})
    return contracts


def threshold_expected(contracts, level):
    """{run date: (invoices, schedules held, untaxed total invoiced)} from the amounts: a period
    below ``level`` is held, then invoiced with the next one if together they reach it."""
    april, may = [0, 0, Decimal(0)], [0, 0, Decimal(0)]

    def bill(month, amount):
        if amount >= level:
            month[0] += 1
            month[2] += amount
            return True
        return False

    for entry in contracts:
        fee = THRESHOLD_PLANS[entry["plan"]]
        april_amount, may_amount = (fee + USAGE_PRICE * quantity for _ts, quantity in entry["readings"])
        if bill(april, april_amount):
            may[1] += 0 if bill(may, may_amount) else 1
        else:
            april[1] += 1
            may[1] += 0 if bill(may, april_amount + may_amount) else 2
    return {date(2022, 4, 30): tuple(april), date(2022, 5, 31): tuple(may)}


def threshold_scenario(args, name, level, template, with_may=False):
    db = copy_database(template, "%s_thr_%s" % (args.db, name))
    contracts = threshold_contracts(args.threshold)
    expected = threshold_expected(contracts, level)
    with server(args, db) as odoo:
        client = odoo.client()
        client("res.company", "write", [1], {"iot_invoice_threshold": float(level)})
        runs = []
        for day in sorted(expected)[:2 if with_may else 1]:
            invoiced, held, untaxed = expected[day]
            run = run_billing(client, db, day)
            run["lines"] = check_run(db, run, invoiced, untaxed)
            assert run["held"] == held, (day, run["held"], held)
            (held_now,) = sql(db, "SELECT count(*) FROM iot_invoicing_schedule WHERE state = 'planned' "
                                  "AND iot_hold_from IS NOT NULL")[0]
            run["held_now"] = held_now
            runs.append(run)
            print("    %s %s: %d invoices, %d held, %.1f s (%d chunks, longest %.1f s; load %.1f)" % (
                name, day, len(run["invoices"]), run["held"], run["seconds"], run["chunks"], run["longest_chunk"],
                run["load"]), flush=True)
        check_exactly_once(db)
    return {"name": name, "level": level, "runs": runs}


def threshold_setup(args):
    """The contracts set up once, copied for each variant (same data, same schedules)."""
    db = args.db + "_thr"
    if args.reuse_setup and sql("postgres", "SELECT 1 FROM pg_database WHERE datname = %s", [db]):
        (contracts,) = sql(db, "SELECT count(*) FROM iot_contract WHERE reference LIKE 'THR-%%'")[0]
        if contracts == args.threshold:
            print("  threshold: the %d contracts of %s reused" % (contracts, db), flush=True)
            return db
    db = prepared_copy(args.db, db)
    with server(args, db) as odoo:
        client = odoo.client()
        for code, price in THRESHOLD_PLANS.items():
            create_plan(client, code, price, "calendar", USAGE_PRICE)
        setup = setup_contracts(client, threshold_contracts(args.threshold))
    print("  threshold: %d contracts set up: %s" % (args.threshold, rounded(setup)), flush=True)
    return db


def report_threshold(variants):
    base = next(variant for variant in variants if not variant["level"])["runs"][0]
    base_per_invoice = base["seconds"] / len(base["invoices"])
    rows = []
    for variant in variants:
        for run in variant["runs"]:
            rows.append([variant["name"], "%.2f" % variant["level"], run["day"], len(run["invoices"]), run["held"],
                         run["held_now"], run["lines"], "%.1f" % run["seconds"], run["chunks"],
                         "%.1f" % run["longest_chunk"], "%.2f" % (run["seconds"] / base["seconds"]),
                         "%.1f" % run["load"]])
    print_table("Threshold invoicing: monthly runs (baseline: the same April run without a level)",
                ["variant", "level", "run", "invoices", "held by the run", "held after", "lines", "s", "chunks",
                 "longest chunk s", "time / baseline", "load"], rows)
    costs = [["invoice (baseline: all invoiced)", "%.1f" % (1000 * base_per_invoice), "1.00"]]
    held_all = next((variant["runs"][0] for variant in variants if variant["name"] == "all_held"), None)
    if held_all:
        per_hold = held_all["seconds"] / held_all["held"]
        costs.append(["hold (every contract held)", "%.1f" % (1000 * per_hold), "%.3f" % (per_hold / base_per_invoice)])
    level = next((variant["runs"][0] for variant in variants if variant["name"] == "level"), None)
    if level and level["held"]:
        # What the level run costs beyond its invoices at the baseline's price, per contract held.
        per_hold = (level["seconds"] - base_per_invoice * len(level["invoices"])) / level["held"]
        costs.append(["hold (level run minus its invoices at the baseline's cost)", "%.1f" % (1000 * per_hold),
                      "%.3f" % (per_hold / base_per_invoice)])
    print_table("Per contract: holding against invoicing", ["", "ms / contract", "ratio to invoicing"], costs)


def main():
    args = parser(__doc__.splitlines()[0])
    args.add_argument("--anniversary", type=int, default=30000, help="contracts of the cycle scenarios")
    args.add_argument("--days", type=int, default=30, help="daily runs of the anniversary scenario (1-30)")
    args.add_argument("--calendar", type=int, help="contracts of the calendar baseline (default: --anniversary)")
    args.add_argument("--threshold", type=int, default=10000, help="contracts of the threshold scenario")
    args.add_argument("--skip", default="", help="comma-separated: anniversary,calendar,threshold,may,all_held")
    args.add_argument("--reuse-setup", action="store_true", help="reuse the threshold contracts of an earlier run")
    args.add_argument("--port", type=int, default=8470, help="HTTP port of the servers (gevent: the next one)")
    args = args.parse_args()
    skip = set(args.skip.split(","))
    ensure_database(args.db, args.reset)
    print("machine: %s" % machine(), flush=True)
    # The baseline first: a run cut short has it for the days it billed.
    calendar = None if "calendar" in skip else cycle_scenario(args, "calendar")
    anniversary = None if "anniversary" in skip else cycle_scenario(args, "anniversary")
    if anniversary or calendar:
        report_cycles(anniversary, calendar)
    if "threshold" not in skip:
        template = threshold_setup(args)
        # The level first: its figures are there even if the machine runs out of time.
        variants = [threshold_scenario(args, "level", LEVEL, template, with_may="may" not in skip),
                    threshold_scenario(args, "none", Decimal(0), template)]
        if "all_held" not in skip:
            variants.append(threshold_scenario(args, "all_held", Decimal(1000), template))
        report_threshold(variants)


if __name__ == "__main__":
    main()
