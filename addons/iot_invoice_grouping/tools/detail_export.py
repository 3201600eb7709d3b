"""The per-device detail of an IoT invoice: one row per schedule part, streamed from SQL.

A row is what one device contributed to one invoice line over one period: its
fixed fee, or the amount of one usage rule. The rows' amounts add up to the
invoice's untaxed total, which the totals row repeats.
"""

import csv
import gzip
import io
import os
import tempfile
import uuid
from datetime import date
from decimal import Decimal

import xlsxwriter

COLUMNS = [
    ("device", "Device", 28),
    ("identifier", "Identifier", 22),
    ("device_type", "Device type", 18),
    ("date_from", "Period from", 12),
    ("date_to", "Period to", 12),
    ("plan", "Plan", 30),
    ("kind", "Kind", 10),
    ("rule", "Usage rule", 20),
    ("quantity", "Quantity", 14),
    ("unit_price", "Unit price", 14),
    ("amount", "Amount", 14),
    ("line", "Invoice line", 10),
    ("line_label", "Invoice line label", 60),
]
# The XLSX leaves the label out of the rows: it is on the "Invoice lines" sheet.
XLSX_COLUMNS = COLUMNS[:-1]
EXCEL_EPOCH = date(1899, 12, 30)
# A sheet holds 1,048,576 rows; the detail sheet spends three on its title, header and totals.
XLSX_MAX_DETAIL_ROWS = 1048576 - 3
FETCH_SIZE = 5000
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time

# A plain read of what was billed: each fixed fee and each usage valuation knows the
# invoice line it went to, with the quantity, unit price, amount and rule name of the
# moment it was billed; editing a rule later changes nothing here.
# The order is total (the schedule and valuation ids end it) and its keys are never NULL,
# so that a detail written in steps resumes after the last row written with a row
# comparison ({after}) and gives the same rows, in the same order, as one full read.
DETAIL_SQL = """
    WITH line AS (
        SELECT line.id, line.name, row_number() OVER (ORDER BY line.sequence, line.id) AS position
          FROM account_move_line line
         WHERE line.move_id = %(move_id)s AND line.display_type = 'product'
    ),
    part AS (
        SELECT schedule.id AS schedule_id, 0 AS valuation_id, 'fixed' AS kind, NULL::varchar AS rule,
               NULL::integer AS sequence, 1::numeric AS quantity, schedule.fixed_amount::numeric AS unit_price,
               schedule.fixed_amount::numeric AS amount, line.position, line.name AS line_name
          FROM line
          JOIN iot_invoicing_schedule schedule ON schedule.fixed_line_id = line.id
        UNION ALL
        SELECT valuation.schedule_id, valuation.id, 'usage', valuation.name, valuation.sequence,
               valuation.quantity::numeric, valuation.unit_price::numeric, valuation.amount::numeric,
               line.position, line.name
          FROM line
          JOIN iot_usage_valuation valuation ON valuation.move_line_id = line.id
    ),
    detail AS (
        SELECT coalesce(device.name, item.name) AS device, device.identifier,
               coalesce(device_type.name ->> %(lang)s, device_type.name ->> 'en_US') AS device_type,
               schedule.date_from, schedule.date_to,
               coalesce(template.name ->> %(lang)s, template.name ->> 'en_US') AS plan,
               part.kind, part.rule, part.quantity::text AS quantity, part.unit_price::text AS unit_price,
               part.amount::text AS amount, part.position, part.line_name,
               coalesce(device.name, item.name, '') AS key_device, coalesce(part.sequence, 0) AS key_sequence,
               coalesce(part.rule, '') AS key_rule, part.schedule_id AS key_schedule,
               part.valuation_id AS key_valuation
          FROM part
          JOIN iot_invoicing_schedule schedule ON schedule.id = part.schedule_id
          JOIN iot_contract_item item ON item.id = schedule.contract_item_id
          JOIN product_product product ON product.id = schedule.product_id
          JOIN product_template template ON template.id = product.product_tmpl_id
          LEFT JOIN iot_billing_device device ON device.id = schedule.device_id
          LEFT JOIN iot_billing_device_type device_type ON device_type.id = device.device_type_id
    )
    SELECT device, identifier, device_type, date_from, date_to, plan, kind, rule,
           quantity, unit_price, amount, position, line_name,
           key_device, date_from, kind, key_sequence, key_rule, key_schedule, key_valuation
      FROM detail
     WHERE {after}
     ORDER BY key_device, date_from, kind, key_sequence, key_rule, key_schedule, key_valuation
     {limit}
"""
ROW_SIZE = 13  # the columns of a row; the sort key follows them in DETAIL_SQL
AFTER_KEY = (
    "(key_device, date_from, kind, key_sequence, key_rule, key_schedule, key_valuation)"
    " > (%(key_device)s, %(key_date)s::date, %(key_kind)s, %(key_sequence)s, %(key_rule)s, %(key_schedule)s,"
    " %(key_valuation)s)"
)
KEY_NAMES = ("key_device", "key_date", "key_kind", "key_sequence", "key_rule", "key_schedule", "key_valuation")


def _stream(cr, query, params):
    """Rows of ``query`` FETCH_SIZE at a time from a server-side cursor, numbers as Decimal.

    A named (server-side) cursor in the caller's transaction: PostgreSQL keeps the
    result, Python holds one batch, whatever the invoice's size. Numbers travel as
    text and become Decimal here: Odoo's cursor turns SQL numerics into floats,
    which would not add up to the cent on large invoices.
    """
    # cr._cnx: Odoo's cursor has no named cursors; this one shares its transaction.
    with cr._cnx.cursor(name="iot_detail_%s" % uuid.uuid4().hex) as named:
        named.itersize = FETCH_SIZE
        named.execute(query, params)
        for row in named:
            yield row[:8] + tuple(Decimal(value) for value in row[8:11]) + row[11:]


def iter_detail_rows(cr, move_id, lang):
    """Yield the invoice's detail rows, in their order, FETCH_SIZE at a time."""
    query = DETAIL_SQL.format(after="TRUE", limit="")
    for row in _stream(cr, query, {"move_id": move_id, "lang": lang}):
        yield row[:ROW_SIZE]


def iter_detail_page(cr, move_id, lang, after, limit):
    """Yield (row, key) for at most ``limit`` rows of the detail that follow the row of key
    ``after`` (None: from the first row). A key is a list of JSON-friendly values."""
    params = {"move_id": move_id, "lang": lang}
    if after is None:
        condition = "TRUE"
    else:
        condition = AFTER_KEY
        params.update(zip(KEY_NAMES, after, strict=True))
    query = DETAIL_SQL.format(after=condition, limit="LIMIT %d" % limit)
    for row in _stream(cr, query, params):
        key = list(row[ROW_SIZE:])
        key[1] = key[1].isoformat()
        yield row[:ROW_SIZE], key


def write_csv(rows, stream, total_label="Total"):
    """Write the rows and a totals row; return (row count, total amount)."""
    write_csv_header(stream)
    count, total = write_csv_rows(stream, rows)
    write_csv_totals(stream, total_label, count, total)
    return count, total


def write_csv_header(stream):
    csv.writer(stream).writerow([label for _key, label, _width in COLUMNS])


def write_csv_rows(stream, rows):
    """Write the rows alone; return (row count, total amount)."""
    writer = csv.writer(stream)
    count, total = 0, Decimal(0)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
        count += 1
        total += row[10]
    return count, total


def write_csv_totals(stream, total_label, count, total):
    csv.writer(stream).writerow([total_label, "", "", "", "", "", "", "", "", "", total, "", "%d rows" % count])


def gzip_member(write, *args):
    """One gzip member of the UTF-8 text ``write(stream, *args)`` writes; returns (bytes, result).

    Gzip members put end to end are one valid gzip file: a detail written in steps is
    the concatenation of a header member, one member per step and a totals member.
    """
    buffer = io.BytesIO()
    # mtime=0: the same rows give the same bytes, whenever they are written.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as compressed:
        with io.TextIOWrapper(compressed, encoding="utf-8", newline="") as stream:
            result = write(stream, *args)
    return buffer.getvalue(), result


def csv_gzip_header():
    """The first member of a .csv.gz detail: the BOM (as ``csv_file`` writes it) and the header."""

    def write(stream):
        stream.write("\ufeff")
        write_csv_header(stream)

    return gzip_member(write)[0]


def temporary_path(suffix):
    """A new empty file for an export; the caller removes it."""
    handle, path = tempfile.mkstemp(prefix="iot-detail-", suffix=suffix)
    os.close(handle)
    return path


def csv_file(rows, path, total_label="Total"):
    """Write the CSV to ``path`` as the rows come; return (row count, total amount)."""
    # utf-8-sig: the BOM makes spreadsheets read UTF-8.
    with open(path, "w", encoding="utf-8-sig", newline="") as stream:
        return write_csv(rows, stream, total_label)


def xlsx_file(rows, path, title, currency_format, invoice_lines, total_label="Total"):
    """XLSX in constant-memory mode, written to ``path``: rows go to disk as they are written.

    The detail sheet carries the invoice line's number; the line labels, the same
    for thousands of rows, are on a second sheet ("Invoice lines").
    ``invoice_lines``: (number, label, quantity, unit price, subtotal) tuples.
    """
    workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
    sheet = workbook.add_worksheet("Detail")
    bold = workbook.add_format({"bold": True})
    money = workbook.add_format({"num_format": currency_format})
    quantity = workbook.add_format({"num_format": "#,##0.######"})
    date = workbook.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_string(0, 0, title, bold)
    for column, (_key, label, width) in enumerate(XLSX_COLUMNS):
        sheet.set_column(column, column, width)
        sheet.write_string(1, column, label, bold)
    serials = {}  # Excel day numbers of the few distinct period dates
    row_index, total = 2, Decimal(0)
    for device, identifier, device_type, date_from, date_to, plan, kind, rule, qty, price, amount, line, _label in rows:
        for day in (date_from, date_to):
            if day not in serials:
                serials[day] = (day - EXCEL_EPOCH).days
        sheet.write_string(row_index, 0, device)
        if identifier:
            sheet.write_string(row_index, 1, identifier)
        if device_type:
            sheet.write_string(row_index, 2, device_type)
        sheet.write_number(row_index, 3, serials[date_from], date)
        sheet.write_number(row_index, 4, serials[date_to], date)
        sheet.write_string(row_index, 5, plan)
        sheet.write_string(row_index, 6, kind)
        if rule:
            sheet.write_string(row_index, 7, rule)
        sheet.write_number(row_index, 8, float(qty), quantity)
        sheet.write_number(row_index, 9, float(price), quantity)
        sheet.write_number(row_index, 10, float(amount), money)
        if line:
            sheet.write_number(row_index, 11, line)
        total += amount
        row_index += 1
    sheet.write_string(row_index, 0, total_label, bold)
    # The exact total is written as a number, not a formula, so it reads the same everywhere.
    sheet.write_number(row_index, 10, float(total), money)
    sheet.write_string(row_index, 11, "%d rows" % (row_index - 2), bold)
    lines_sheet = workbook.add_worksheet("Invoice lines")
    for column, (label, width) in enumerate(
        (("Invoice line", 12), ("Label", 70), ("Quantity", 14), ("Unit price", 14), ("Subtotal", 14))
    ):
        lines_sheet.set_column(column, column, width)
        lines_sheet.write_string(0, column, label, bold)
    for index, (number, label, line_quantity, unit_price, subtotal) in enumerate(invoice_lines, 1):
        lines_sheet.write_number(index, 0, number)
        lines_sheet.write_string(index, 1, label or "")
        lines_sheet.write_number(index, 2, line_quantity, quantity)
        lines_sheet.write_number(index, 3, unit_price, quantity)
        lines_sheet.write_number(index, 4, subtotal, money)
    workbook.close()

