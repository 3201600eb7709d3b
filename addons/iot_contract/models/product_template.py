from odoo import fields, models

from ..tools import BILL_CYCLES, BILLING_PERIODS


class ProductTemplate(models.Model):
    _inherit = "product.template"

    iot_is_plan = fields.Boolean(
        string="IoT Plan",
        help="A subscription plan devices can be activated on; its sales price is the fixed fee of one billing period.",
    )
    iot_duration_months = fields.Integer(
        string="Duration (months)", default=12, help="Default duration of a contract item."
    )
    iot_billing_period = fields.Selection(
        BILLING_PERIODS,
        string="Billing Period",
        default="monthly",
        required=True,
    )
    iot_bill_cycle = fields.Selection(
        BILL_CYCLES,
        string="Bill Cycle",
        default="calendar",
        required=True,
        help="Calendar: periods are calendar months (quarters, years). Anniversary: periods start on "
        "the day the device was activated (activated on the 17th: billed 17th to 16th), so that "
        "customers' invoices spread over the days of the month.",
    )
    iot_suspended_fees = fields.Selection(
        [("continue", "Continue"), ("pause", "Pause")],
        string="Fees While Suspended",
        default="continue",
        required=True,
        help="Continue: a suspended device pays its fixed fee as usual. Pause: the days it is "
        "suspended are not billed (periods not invoiced yet are prorated by days).",
    )
    iot_end_of_term = fields.Selection(
        [("renew", "Renew"), ("end", "End")],
        string="At End of Term",
        default="renew",
        required=True,
        help="Renew: another term of the same duration, same plan and price. End: the item ends on "
        "its last day, its device is terminated and blocked the day after.",
    )

    _sql_constraints = [
        (
            "iot_duration_months_positive",
            "CHECK(iot_duration_months >= 0)",
            "The duration of a plan cannot be negative.",
        ),
    ]
