from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_usage_grace_days = fields.Integer(
        string="Usage grace period (days)",
        default=0,
        help="Days a billing run waits after a schedule's invoice date, so that readings "
        "sent late by devices still make it into their own period.",
    )
    iot_usage_raw_retention_days = fields.Integer(
        string="Raw readings kept (days)",
        default=90,
        help="Days raw readings are kept after their timestamp; then the day's partition is "
        "exported (if asked) and dropped. Usage already aggregated and billed is not affected. "
        "Partitions are shared by the companies: the longest window of any company applies.",
    )
    iot_usage_raw_export = fields.Boolean(
        string="Export raw readings before dropping them",
        default=True,
        help="Keep each day's readings of the company as a gzip-compressed CSV (Usage > Raw "
        "Readings Exports) when its partition is dropped.",
    )
    iot_usage_raw_keep = fields.Boolean(
        string="Keep raw readings",
        default=True,
        help="Off: readings are only added to the usage buckets; of each reading only its key "
        "(device, message id, timestamp) is kept, for the retention window, so that a "
        "redelivery still counts once. Nothing to export, no Readings list for the company.",
    )

    _sql_constraints = [
        (
            "iot_usage_raw_retention_days_positive",
            "CHECK(iot_usage_raw_retention_days >= 1)",
            "Raw readings are kept at least one day.",
        ),
    ]
