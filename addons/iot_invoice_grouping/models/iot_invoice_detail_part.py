from odoo import fields, models


class IotInvoiceDetailPart(models.Model):
    """One step of an invoice's detail written in the background: a gzip member of CSV rows.

    Parts live in the database, so that a step written by one worker, on any host, is
    there for the next; the step that writes one commits it, a step that dies leaves
    nothing. ``first_row`` is the position the part starts at: two parts cannot claim
    the same one. The last part written gives the key of the row to resume after.
    """

    _name = "iot.invoice.detail.part"
    _description = "IoT invoice detail part"
    _order = "move_id, first_row"

    # Indexed by the unique (move_id, first_row) constraint.
    move_id = fields.Many2one("account.move", string="Invoice", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="move_id.company_id", store=True)
    first_row = fields.Integer(required=True, help="Rows of the detail before this part's first row.")
    row_count = fields.Integer(required=True)
    # Exact decimal text: the rows' amounts travel as text too, and a float would lose cents.
    amount_total = fields.Char(required=True, help="Sum of the part's row amounts, as exact decimal text.")
    last_key = fields.Json(required=True, help="Sort key of the part's last row: the next part starts after it.")
    # Raw gzip bytes in a bytea column (not base64: never shown in a form).
    data = fields.Binary(attachment=False, required=True)

    _sql_constraints = [
        ("position_unique", "UNIQUE(move_id, first_row)", "Two parts of a detail cannot start at the same row."),
    ]
