from odoo import fields, models


class IotInvoicingScheduleComponent(models.Model):
    """One component of a bundle period billed on one line per option, as billed: the plan's base
    or one option, its amount, and the invoice line it went to.

    Written once when the period is invoiced (``_iot_link_invoice_lines``), read back by the
    invoice's detail (one row per component, on its own line) and by a termination credit (one
    credit line per component, with that line's product, taxes and account).
    """

    _name = "iot.invoicing.schedule.component"
    _description = "IoT Bundle Fee Component Billed"
    _order = "schedule_id, id"

    schedule_id = fields.Many2one(
        "iot.invoicing.schedule", required=True, ondelete="cascade", index=True, readonly=True
    )
    move_line_id = fields.Many2one(
        "account.move.line", string="Invoice Line", required=True, ondelete="cascade", index=True, readonly=True
    )
    product_id = fields.Many2one("product.product", string="Component", required=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    currency_id = fields.Many2one(related="schedule_id.currency_id")
    amount = fields.Monetary(required=True, readonly=True, help="What the component billed for the period.")

    _sql_constraints = [
        ("schedule_product_unique", "UNIQUE(schedule_id, product_id)", "A period bills each component once."),
    ]
