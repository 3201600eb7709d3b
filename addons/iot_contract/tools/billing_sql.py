"""The queries of contracts billed in steps (``iot.billing.run.part`` / ``.line``).

Set-based, one statement per step and table, tens of thousands of rows each; composed with
``odoo.tools.SQL(CONSTANT, name=value, ...)``. ``run``: the billing run, ``contract``: the
contract billed in steps.
"""

# The distinct contracts of a run's parts (a million rows), read as a skip through the
# index, plus those whose parts are all linked but whose lines remain (invoice not posted).
CONTRACTS_IN_STEPS = """
    WITH RECURSIVE staged(contract_id) AS (
        (SELECT contract_id FROM iot_billing_run_part WHERE run_id = %(run)s ORDER BY contract_id LIMIT 1)
        UNION ALL
        SELECT (SELECT part.contract_id FROM iot_billing_run_part part
                 WHERE part.run_id = %(run)s AND part.contract_id > staged.contract_id
                 ORDER BY part.contract_id LIMIT 1)
          FROM staged WHERE staged.contract_id IS NOT NULL
    )
    SELECT contract_id FROM staged WHERE contract_id IS NOT NULL
     UNION SELECT contract_id FROM iot_billing_run_line WHERE run_id = %(run)s
"""

# Stage: the invoice lines a slice adds (two workers' first slices may add the same line:
# the later one meets a serialization failure and starts again).
INSERT_LINES = """
    INSERT INTO iot_billing_run_line (run_id, company_id, contract_id, invoice_date, key)
    SELECT %(run)s, %(company)s, %(contract)s, row.invoice_date, row.key
      FROM unnest(%(invoice_dates)s::date[], %(keys)s::varchar[]) AS row(invoice_date, key)
    ON CONFLICT (run_id, contract_id, invoice_date, key) DO NOTHING
"""

LINE_IDS = """
    SELECT invoice_date, key, id FROM iot_billing_run_line WHERE run_id = %(run)s AND contract_id = %(contract)s
"""

# Stage: one row per part of the slice, in the order of the schedules' parts (a schedule
# with nothing to bill has one row without line, so that it is closed with its period).
INSERT_PARTS = """
    INSERT INTO iot_billing_run_part (
        run_id, company_id, contract_id, invoice_date, schedule_id, line_id, kind, valuation_id,
        device_id, date_from, date_to, quantity, price_unit, amount)
    SELECT %(run)s, %(company)s, %(contract)s, schedule.invoice_date, schedule.id, row.line_id, row.kind,
           row.valuation_id, schedule.device_id, schedule.date_from, schedule.date_to, row.quantity,
           row.price_unit, row.amount
      FROM unnest(%(schedule_ids)s::int[], %(line_ids)s::int[], %(kinds)s::varchar[], %(valuation_ids)s::int[],
                  %(quantities)s::numeric[], %(prices)s::numeric[], %(amounts)s::numeric[]) WITH ORDINALITY
           AS row(schedule_id, line_id, kind, valuation_id, quantity, price_unit, amount, position)
      JOIN iot_invoicing_schedule schedule ON schedule.id = row.schedule_id
     ORDER BY row.position
"""

# Invoice: the sums each line is built from (see ``iot.contract._iot_summary_line_vals``).
LINE_SUMS = """
    SELECT line_id, count(*), sum(amount)::text, sum(quantity)::text, min(price_unit)::text,
           max(price_unit)::text, min(date_from), max(date_to), count(DISTINCT (date_from, date_to)),
           count(DISTINCT device_id) + count(DISTINCT schedule_id) FILTER (WHERE device_id IS NULL),
           min(schedule_id)
      FROM iot_billing_run_part
     WHERE run_id = %(run)s AND contract_id = %(contract)s AND line_id IS NOT NULL
     GROUP BY line_id
"""

# Invoice: each line's first member, as billed at once: its first schedule's part (parts of
# one schedule are staged in their order, whatever worker staged which slice), with its
# position among its schedule's parts: a schedule may have several parts of one kind (a
# bundle's options), which its kind alone does not tell apart.
LINE_FIRST_MEMBERS = """
    SELECT first.line_id, first.schedule_id, first.kind, first.valuation_id, first.id,
           (SELECT count(*) FROM iot_billing_run_part earlier
             WHERE earlier.run_id = %(run)s AND earlier.contract_id = %(contract)s
               AND earlier.schedule_id = first.schedule_id AND earlier.id < first.id) AS position
      FROM (SELECT DISTINCT ON (line_id) line_id, schedule_id, kind, valuation_id, id
              FROM iot_billing_run_part
             WHERE run_id = %(run)s AND contract_id = %(contract)s AND line_id IS NOT NULL
             ORDER BY line_id, schedule_id, id) first
"""

# Link: the next schedules in the parts' index order (a plan that does not depend on the
# statistics the run has just made stale), a few slices' worth: other workers lock theirs.
LINK_CANDIDATES = """
    SELECT schedule_id FROM iot_billing_run_part WHERE run_id = %(run)s AND contract_id = %(contract)s
     GROUP BY schedule_id ORDER BY schedule_id LIMIT %(limit)s
"""

# Link: the parts of a locked slice, with the invoice line and invoice they go to.
SLICE_PARTS = """
    SELECT part.schedule_id, part.kind, part.valuation_id, line.move_line_id,
           (SELECT invoice.move_id FROM iot_billing_run_line invoice
             WHERE invoice.run_id = part.run_id AND invoice.contract_id = part.contract_id
               AND invoice.invoice_date = part.invoice_date LIMIT 1)
      FROM iot_billing_run_part part
      LEFT JOIN iot_billing_run_line line ON line.id = part.line_id
     WHERE part.run_id = %(run)s AND part.contract_id = %(contract)s AND part.schedule_id = ANY(%(schedule_ids)s)
     ORDER BY part.id
"""

DELETE_SLICE_PARTS = """
    DELETE FROM iot_billing_run_part
     WHERE run_id = %(run)s AND contract_id = %(contract)s AND schedule_id = ANY(%(schedule_ids)s)
"""

# Unstage: the schedules a contract that failed before its invoice had staged.
STAGED_SCHEDULES = """
    SELECT DISTINCT schedule_id FROM iot_billing_run_part WHERE run_id = %(run)s AND contract_id = %(contract)s
"""

DELETE_CONTRACT_ROWS = """
    DELETE FROM %(table)s WHERE run_id = %(run)s AND contract_id = %(contract)s
"""
