"""The one writer of the IoT detail files: rows streamed from SQL to a CSV or XLSX file.

A detail file lists the rows behind an amount (an invoice's per-device detail here, a
revenue share settlement's in iot_revenue_share) and ends with a totals row that repeats
the amount. A ``DetailExport`` names a detail's columns and where its totals row puts the
row count and the sums; its writers read the rows from a server-side cursor, FETCH_SIZE at
a time, and write them to a temporary file as they come: memory does not grow with the
detail.
"""

import csv
import gzip
import io
import os
import tempfile
import uuid
from datetime import date
from decimal import Decimal
from typing import NamedTuple

import xlsxwriter

from odoo.tools import SQL

FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
EXCEL_EPOCH = date(1899, 12, 30)
# A sheet holds 1,048,576 rows; a detail sheet spends three on its title, header and totals.
XLSX_MAX_DETAIL_ROWS = 1048576 - 3
FETCH_SIZE = 5000
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time

# Kinds of column: what the SQL gives and how a sheet writes it.
TEXT = "text"  # a string, written as one
DATE = "date"  # a date, written as an Excel day number
DECIMAL = "decimal"  # a number that travels as text (exact) and becomes a Decimal
NUMBER = "number"  # a number as it comes (an integer, a float)


class Column(NamedTuple):
    """One column of a detail file."""

    label: str
    width: int
    kind: str = TEXT
    # Name of the sheet format of its numbers: "money" (the currency's) or one of the
    # export's ``number_formats``.
    number_format: str | None = None
    # In a sheet, an empty value (None, "", 0) leaves the cell blank.
    optional: bool = False


def money_format(currency):
    """The Excel number format of ``currency``'s amounts: its decimals (none for JPY: no decimal
    point either) and its symbol."""
    decimals = "." + "0" * currency.decimal_places if currency.decimal_places else ""
    return '#,##0%s "%s"' % (decimals, currency.symbol or currency.name)


def temporary_path(suffix):
    """A new empty file for an export; the caller removes it."""
    handle, path = tempfile.mkstemp(prefix="iot-detail-", suffix=suffix)
    os.close(handle)
    return path


def read_and_remove(path):
    """The bytes of the temporary file ``path``, which is removed."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(path)


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


class DetailExport:
    """The columns of one detail file, its totals row, and its writers.

    ``sum_columns``: the columns the totals row adds up. ``count_column``: where it says
    how many rows there are (its first column carries the label). ``number_formats``:
    ``(name, Excel number format)`` of the sheet's other numbers, created in this order.
    ``xlsx_columns`` / ``xlsx_count_column``: the sheet's, when they differ (a sheet may
    leave out a column the CSV carries, which must then be the last ones).
    """

    def __init__(self, columns, sum_columns, count_column, number_formats=(), xlsx_columns=None,
                 xlsx_count_column=None):
        self.columns = tuple(columns)
        self.sum_columns = tuple(sum_columns)
        self.count_column = count_column
        self.number_formats = tuple(number_formats)
        self.xlsx_columns = tuple(xlsx_columns or columns)
        self.xlsx_count_column = count_column if xlsx_count_column is None else xlsx_count_column
        self._decimals = tuple(index for index, column in enumerate(self.columns) if column.kind == DECIMAL)

    # ------------------------------------------------------------------
    # Rows
    # ------------------------------------------------------------------
    def stream(self, cr, query):
        """Rows of ``query`` (an ``SQL``) FETCH_SIZE at a time from a server-side cursor.

        A named (server-side) cursor in the caller's transaction: PostgreSQL keeps the
        result, Python holds one batch, whatever the detail's size. The DECIMAL columns
        travel as text and become Decimal here: Odoo's cursor turns SQL numerics into
        floats, which would not add up to the cent on large details. A query may give
        more values than the columns (a sort key): they follow, as they came.
        """
        decimals = self._decimals
        # cr._cnx: Odoo's cursor has no named cursors; this one shares its transaction.
        with cr._cnx.cursor(name="iot_detail_%s" % uuid.uuid4().hex) as named:
            named.itersize = FETCH_SIZE
            named.execute(query.code, query.params)
            for row in named:
                values = list(row)
                for index in decimals:
                    values[index] = Decimal(values[index])
                yield tuple(values)

    # ------------------------------------------------------------------
    # CSV
    # ------------------------------------------------------------------
    def write_csv_header(self, stream):
        csv.writer(stream).writerow([column.label for column in self.columns])

    def write_csv_rows(self, stream, rows):
        """Write the rows alone; return (row count, sums of the ``sum_columns``)."""
        writer = csv.writer(stream)
        sum_columns = self.sum_columns
        count, sums = 0, [Decimal(0)] * len(sum_columns)
        for row in rows:
            writer.writerow(["" if value is None else value for value in row])
            count += 1
            for position, index in enumerate(sum_columns):
                sums[position] += row[index]
        return count, tuple(sums)

    def write_csv_totals(self, stream, total_label, count, sums):
        csv.writer(stream).writerow(self._totals_row(len(self.columns), self.count_column, total_label, count, sums))

    def _totals_row(self, width, count_column, total_label, count, sums):
        values = [""] * width
        values[0] = total_label
        values[count_column] = "%d rows" % count
        for index, total in zip(self.sum_columns, sums, strict=True):
            values[index] = total
        return values

    def write_csv(self, stream, rows, total_label="Total"):
        """Write the header, the rows and the totals row; return (row count, sums)."""
        self.write_csv_header(stream)
        count, sums = self.write_csv_rows(stream, rows)
        self.write_csv_totals(stream, total_label, count, sums)
        return count, sums

    def csv_file(self, path, rows, total_label="Total"):
        """Write the CSV to ``path`` as the rows come; return (row count, sums)."""
        # utf-8-sig: the BOM makes spreadsheets read UTF-8.
        with open(path, "w", encoding="utf-8-sig", newline="") as stream:
            return self.write_csv(stream, rows, total_label)

    def csv_file_copied(self, cr, query, totals_query, path, total_label="Total"):
        """Write the CSV to ``path`` with its rows written by PostgreSQL (``COPY ... CSV``).

        No row goes through Python: for details written as part of a run (a settlement's).
        The rows are in PostgreSQL's CSV dialect (lines end with ``\\n``, empty
        strings are quoted); header and totals as ``csv_file`` writes them.
        ``totals_query`` gives the row count, then the sums of the ``sum_columns``.
        """
        copy = SQL("COPY (%s) TO STDOUT WITH (FORMAT csv)", query)
        with open(path, "w", encoding="utf-8-sig", newline="") as stream:
            self.write_csv_header(stream)
            # COPY takes no parameters: they are bound here, by psycopg2.
            cr.copy_expert(cr.mogrify(copy.code, copy.params).decode(), stream)
            cr.execute(totals_query)
            count, *sums = cr.fetchone()
            self.write_csv_totals(stream, total_label, count, sums)

    def csv_gzip_header(self):
        """The first member of a .csv.gz detail: the BOM (as ``csv_file`` writes it) and the header."""

        def write(stream):
            stream.write("\ufeff")
            self.write_csv_header(stream)

        return gzip_member(write)[0]

    # ------------------------------------------------------------------
    # XLSX
    # ------------------------------------------------------------------
    def xlsx_file(self, path, rows, title, currency_format, total_label="Total", sheets=()):
        """XLSX in constant-memory mode, written to ``path``: rows go to disk as they are written.

        Sheet "Detail": the title, the header, the rows and the totals row. ``sheets``:
        further ``(name, columns, rows)`` tables, each after a header row.
        Returns (row count, sums).
        """
        workbook = xlsxwriter.Workbook(path, {"constant_memory": True})
        sheet = workbook.add_worksheet("Detail")
        bold = workbook.add_format({"bold": True})
        formats = {"money": workbook.add_format({"num_format": currency_format})}
        for name, number_format in self.number_formats:
            formats[name] = workbook.add_format({"num_format": number_format})
        sheet.write_string(0, 0, title, bold)
        columns = self.xlsx_columns
        self._write_header(sheet, 1, columns, bold)
        count, sums = self._write_rows(sheet, 2, columns, rows, formats, self.sum_columns)
        totals_row = 2 + count
        sheet.write_string(totals_row, 0, total_label, bold)
        sheet.write_string(totals_row, self.xlsx_count_column, "%d rows" % count, bold)
        # Exact totals written as numbers, not formulas, so they read the same everywhere.
        for index, total in zip(self.sum_columns, sums, strict=True):
            sheet.write_number(totals_row, index, float(total), formats.get(columns[index].number_format))
        for name, sheet_columns, sheet_rows in sheets:
            other = workbook.add_worksheet(name)
            self._write_header(other, 0, sheet_columns, bold)
            self._write_rows(other, 1, sheet_columns, sheet_rows, formats)
        workbook.close()
        return count, sums

    @staticmethod
    def _write_header(sheet, row_index, columns, bold):
        for index, column in enumerate(columns):
            sheet.set_column(index, index, column.width)
            sheet.write_string(row_index, index, column.label, bold)

    def _write_rows(self, sheet, first_row, columns, rows, formats, sum_columns=()):
        """Write ``rows`` from ``first_row`` on; return (row count, sums of ``sum_columns``)."""
        writers = [self._cell_writer(sheet, index, column, formats) for index, column in enumerate(columns)]
        sums = [Decimal(0)] * len(sum_columns)
        row_index = first_row
        for row in rows:
            # strict=False: a row may carry more values than the sheet shows (the last ones).
            for write, value in zip(writers, row, strict=False):
                write(row_index, value)
            for position, index in enumerate(sum_columns):
                sums[position] += row[index]
            row_index += 1
        return row_index - first_row, tuple(sums)

    @staticmethod
    def _cell_writer(sheet, index, column, formats):
        """A function writing one value of ``column`` to a row of ``sheet``."""
        cell_format = formats.get(column.number_format)
        optional = column.optional
        if column.kind == TEXT:

            def write(row_index, value):
                if value or not optional:
                    sheet.write_string(row_index, index, value or "", cell_format)

        elif column.kind == DATE:
            serials = {}  # Excel day numbers of the few distinct dates

            def write(row_index, value):
                serial = serials.get(value)
                if serial is None:
                    serial = serials[value] = (value - EXCEL_EPOCH).days
                sheet.write_number(row_index, index, serial, cell_format)

        elif column.kind == DECIMAL:

            def write(row_index, value):
                if value or not optional:
                    sheet.write_number(row_index, index, float(value), cell_format)

        else:

            def write(row_index, value):
                if value or not optional:
                    sheet.write_number(row_index, index, value, cell_format)

        return write
