from odoo import fields, models

GROUPING_POLICIES = [
    ("none", "None (one line per device and period)"),
    ("plan", "By plan"),
    ("plan_period", "By plan and period"),
    ("plan_metric", "By plan and metric"),
    ("device_type", "By device type"),
    ("device_tag", "By device tag (site)"),
    ("analytic", "By analytic distribution"),
]


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_invoice_grouping = fields.Selection(
        GROUPING_POLICIES,
        string="IoT invoice grouping",
        default="plan_period",
        required=True,
        help="Default grouping of new IoT contracts' invoice lines.",
    )
    iot_attach_detail = fields.Boolean(
        string="Attach the device detail to IoT invoices",
        help="When an IoT invoice is posted, its per-device detail (XLSX) is attached to it, "
        "so that it is sent with the invoice.",
    )
