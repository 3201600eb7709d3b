"""The per-device detail of a revenue share settlement: one row per share line, streamed from SQL.

The rows' shares add up to the settlement's bill (or entry) total, which the totals row repeats.
Written by the detail writer of iot_invoice_grouping (``DetailExport``).
"""

from odoo.addons.iot_invoice_grouping.tools import DATE, DECIMAL, Column, DetailExport
from odoo.tools import SQL

SETTLEMENT_DETAIL = DetailExport(
    [
        Column("Device", 28),
        Column("Identifier", 22, optional=True),
        Column("Customer document", 22),
        Column("Customer", 28),
        Column("Period from", 12, DATE, "date"),
        Column("Period to", 12, DATE, "date"),
        Column("Rule", 28),
        Column("Kind", 10),
        Column("Billed untaxed", 14, DECIMAL, "money"),
        Column("Percent", 10, DECIMAL, "percent", optional=True),
        Column("Share", 14, DECIMAL, "money"),
    ],
    sum_columns=(8, 10),
    count_column=1,
    number_formats=(("percent", "0.00##"), ("date", "yyyy-mm-dd")),
)

DETAIL_SQL = """
    SELECT coalesce(device.name, item.name), device.identifier, move.name, customer.name,
           schedule.date_from, schedule.date_to, rule.name, line.kind,
           line.base_amount::text, coalesce(line.percent, 0)::text, line.share_amount::text
      FROM iot_revenue_share_line line
      JOIN iot_invoicing_schedule schedule ON schedule.id = line.schedule_id
      JOIN iot_contract_item item ON item.id = schedule.contract_item_id
      JOIN account_move move ON move.id = line.invoice_id
      JOIN res_partner customer ON customer.id = move.partner_id
      JOIN iot_revenue_share_rule rule ON rule.id = line.rule_id
      LEFT JOIN iot_billing_device device ON device.id = schedule.device_id
     WHERE line.settlement_id = %(settlement_id)s
     ORDER BY 1, schedule.date_from, move.name, line.rule_id, line.kind
"""

# The totals row of the CSV written by COPY: the row count, then the sums of the billed and share columns.
TOTALS_SQL = """
    SELECT count(*), coalesce(sum(base_amount), 0)::text, coalesce(sum(share_amount), 0)::text
      FROM iot_revenue_share_line
     WHERE settlement_id = %(settlement_id)s
"""


def detail_query(settlement_id):
    return SQL(DETAIL_SQL, settlement_id=settlement_id)


def totals_query(settlement_id):
    return SQL(TOTALS_SQL, settlement_id=settlement_id)


def iter_detail_rows(cr, settlement_id):
    """Yield the settlement's detail rows, FETCH_SIZE at a time from a server-side cursor."""
    return SETTLEMENT_DETAIL.stream(cr, detail_query(settlement_id))
