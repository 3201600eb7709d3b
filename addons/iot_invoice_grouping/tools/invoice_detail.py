"""The per-device detail of an IoT invoice: one row per schedule part, streamed from SQL.

A row is what one device contributed to one invoice line over one period: its
fixed fee, or the amount of one usage rule. The rows' amounts add up to the
invoice's untaxed total, which the totals row repeats.
"""

from odoo.tools import SQL

from .detail_export import DATE, DECIMAL, NUMBER, Column, DetailExport

COLUMNS = [
    Column("Device", 28),
    Column("Identifier", 22, optional=True),
    Column("Device type", 18, optional=True),
    Column("Period from", 12, DATE, "date"),
    Column("Period to", 12, DATE, "date"),
    Column("Plan", 30),
    Column("Kind", 10),
    Column("Usage rule", 20, optional=True),
    Column("Quantity", 14, DECIMAL, "quantity"),
    Column("Unit price", 14, DECIMAL, "quantity"),
    Column("Amount", 14, DECIMAL, "money"),
    Column("Invoice line", 10, NUMBER, optional=True),
    Column("Invoice line label", 60),
    # The contract's customer: the subsidiary on a collective invoice (iot_organization).
    Column("Customer", 28),
    # Who used the device over the period (``account.move._iot_detail_device_user_sql``).
    Column("Device user", 28, optional=True),
]
AMOUNT = 10
LABEL = 12
INVOICE_DETAIL = DetailExport(
    COLUMNS,
    sum_columns=(AMOUNT,),
    count_column=LABEL,
    number_formats=(("quantity", "#,##0.######"), ("date", "yyyy-mm-dd")),
    # The XLSX leaves the label out of the rows (``xlsx_row``): it is on the "Invoice lines" sheet.
    xlsx_columns=COLUMNS[:LABEL] + COLUMNS[LABEL + 1:],
    xlsx_count_column=11,
)
# The "Invoice lines" sheet: (number, label, quantity, unit price, subtotal) of each product line.
INVOICE_LINE_COLUMNS = [
    Column("Invoice line", 12, NUMBER),
    Column("Label", 70),
    Column("Quantity", 14, NUMBER, "quantity"),
    Column("Unit price", 14, NUMBER, "quantity"),
    Column("Subtotal", 14, NUMBER, "money"),
]
ROW_SIZE = len(COLUMNS)  # the sort key follows the columns in the page query


def xlsx_row(row):
    """A detail row as the XLSX sheet writes it: without the line label."""
    return row[:LABEL] + row[LABEL + 1:]


# The amounts billed on the invoice's product lines (the CTE ``line``) that are no usage valuation:
# the fixed fees, one row per fee and line, ``(schedule_id, part_id, line_id, kind, amount)``,
# ``part_id`` telling apart the amounts of one schedule billed on several lines (0 when it has
# one), ``kind`` the detail's Kind ('fixed'). account.move._iot_detail_fixed_parts() returns it; a
# module that bills a fee on several lines (iot_bundle) or deducts from a period (iot_prepaid's
# credit applied, kind 'credit') extends it.
FIXED_PARTS_SQL = SQL(
    """SELECT schedule.id AS schedule_id, 0 AS part_id, line.id AS line_id, 'fixed'::varchar AS kind,
              schedule.fixed_amount::numeric AS amount
         FROM line
         JOIN iot_invoicing_schedule schedule ON schedule.fixed_line_id = line.id"""
)

# A plain read of what was billed: each fixed fee and each usage valuation knows the
# invoice line it went to, with the quantity, unit price, amount and rule name of the
# moment it was billed; editing a rule later changes nothing here.
# The order is total (the schedule and valuation ids end it) and its keys are never NULL,
# so that a detail written in steps resumes after the last row written with a row
# comparison (``after``) and gives the same rows, in the same order, as one full read.
DETAIL_SQL = """
    WITH line AS (
        SELECT line.id, line.name, row_number() OVER (ORDER BY line.sequence, line.id) AS position
          FROM account_move_line line
         WHERE line.move_id = %(move_id)s AND line.display_type = 'product'
    ),
    fixed AS (%(fixed_parts)s),
    part AS (
        SELECT fixed.schedule_id, fixed.part_id, fixed.kind, NULL::varchar AS rule,
               NULL::integer AS sequence, 1::numeric AS quantity, fixed.amount AS unit_price,
               fixed.amount, line.position, line.name AS line_name
          FROM fixed
          JOIN line ON line.id = fixed.line_id
        UNION ALL
        SELECT valuation.schedule_id, valuation.id, 'usage', valuation.name, valuation.sequence,
               valuation.quantity::numeric, valuation.unit_price::numeric, valuation.amount::numeric,
               line.position, line.name
          FROM line
          JOIN iot_usage_valuation valuation ON valuation.move_line_id = line.id
    ),
    detail AS (
        SELECT customer.name AS customer, %(device_user)s AS device_user,
               coalesce(device.name, item.name) AS device, device.identifier,
               coalesce(device_type.name ->> %(lang)s, device_type.name ->> 'en_US') AS device_type,
               schedule.date_from, schedule.date_to,
               coalesce(template.name ->> %(lang)s, template.name ->> 'en_US') AS plan,
               part.kind, part.rule, part.quantity::text AS quantity, part.unit_price::text AS unit_price,
               part.amount::text AS amount, part.position, part.line_name,
               coalesce(customer.name, '') AS key_customer, contract.id AS key_contract,
               coalesce(device.name, item.name, '') AS key_device, coalesce(part.sequence, 0) AS key_sequence,
               coalesce(part.rule, '') AS key_rule, part.schedule_id AS key_schedule,
               part.part_id AS key_part
          FROM part
          JOIN iot_invoicing_schedule schedule ON schedule.id = part.schedule_id
          JOIN iot_contract_item item ON item.id = schedule.contract_item_id
          JOIN iot_contract contract ON contract.id = schedule.contract_id
          JOIN res_partner customer ON customer.id = contract.partner_id
          JOIN product_product product ON product.id = schedule.product_id
          JOIN product_template template ON template.id = product.product_tmpl_id
          LEFT JOIN iot_billing_device device ON device.id = schedule.device_id
          LEFT JOIN iot_billing_device_type device_type ON device_type.id = device.device_type_id
    )
    SELECT device, identifier, device_type, date_from, date_to, plan, kind, rule,
           quantity, unit_price, amount, position, line_name, customer, device_user,
           key_customer, key_contract, key_device, date_from, kind, key_sequence, key_rule, key_schedule,
           key_part
      FROM detail
     WHERE %(after)s
     ORDER BY key_customer, key_contract, key_device, date_from, kind, key_sequence, key_rule, key_schedule,
              key_part
     %(limit)s
"""
AFTER_KEY = """(key_customer, key_contract, key_device, date_from, kind, key_sequence, key_rule, key_schedule,
              key_part)
             > (%s, %s, %s, %s::date, %s, %s, %s, %s, %s)"""
KEY_DATE = 3  # the position of the period's start in a sort key
NO_DEVICE_USER = SQL("NULL::varchar")


def detail_query(move_id, lang, after=None, limit=None, fixed_parts=FIXED_PARTS_SQL, device_user=NO_DEVICE_USER):
    """The detail's query: its rows after the row of sort key ``after`` (None: from the first
    row), at most ``limit`` of them (None: all). ``fixed_parts``: see FIXED_PARTS_SQL;
    ``device_user``: an SQL expression of the device's user over the row's period (on ``device``
    and ``schedule``), NULL by default."""
    return SQL(
        DETAIL_SQL,
        move_id=move_id,
        lang=lang,
        fixed_parts=fixed_parts,
        device_user=device_user,
        after=SQL(AFTER_KEY, *after) if after is not None else SQL("TRUE"),
        limit=SQL("LIMIT %s", limit) if limit is not None else SQL(),
    )


def iter_detail_rows(cr, move_id, lang, fixed_parts=FIXED_PARTS_SQL, device_user=NO_DEVICE_USER):
    """Yield the invoice's detail rows, in their order, FETCH_SIZE at a time."""
    for row in INVOICE_DETAIL.stream(
            cr, detail_query(move_id, lang, fixed_parts=fixed_parts, device_user=device_user)):
        yield row[:ROW_SIZE]


def iter_detail_page(cr, move_id, lang, after, limit, fixed_parts=FIXED_PARTS_SQL, device_user=NO_DEVICE_USER):
    """Yield (row, key) for at most ``limit`` rows of the detail that follow the row of key
    ``after`` (None: from the first row). A key is a list of JSON-friendly values."""
    for row in INVOICE_DETAIL.stream(cr, detail_query(move_id, lang, after, limit, fixed_parts, device_user)):
        key = list(row[ROW_SIZE:])
        key[KEY_DATE] = key[KEY_DATE].isoformat()
        yield row[:ROW_SIZE], key
