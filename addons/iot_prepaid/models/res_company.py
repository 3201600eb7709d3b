from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_prepaid_hold_minutes = fields.Integer(
        string="Credit hold (minutes)",
        default=15,
        help="How long credit held by an authorization (POST /iot/authorize) waits for its confirm "
        "or release; then the hold expires and the credit is available again.",
    )

    _sql_constraints = [
        ("iot_prepaid_hold_minutes_positive", "CHECK(iot_prepaid_hold_minutes >= 1)",
         "Credit is held at least one minute."),
    ]
