from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_usage_grace_days = fields.Integer(
        string="Usage grace period (days)",
        default=0,
        help="Days a billing run waits after a schedule's invoice date, so that readings "
        "sent late by devices still make it into their own period.",
    )
