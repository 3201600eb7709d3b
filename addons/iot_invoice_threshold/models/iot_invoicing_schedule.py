from odoo import fields, models


class IotInvoicingSchedule(models.Model):
    _inherit = "iot.invoicing.schedule"

    iot_hold_from = fields.Date(
        string="Held Since",
        readonly=True,
        copy=False,
        help="The period was due on this date but held below its contract's invoicing level; its "
        "invoice date is then the date it is due again. Kept once invoiced.",
    )
    iot_hold_run_id = fields.Many2one(
        "iot.billing.run",
        string="Held By",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="set null",
        help="The billing run that last held the period.",
    )
