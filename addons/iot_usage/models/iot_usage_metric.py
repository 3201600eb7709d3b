from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .iot_usage_bucket import misaligned_zones

BUCKET_INTERVALS = [("minute", "Minute"), ("hour", "Hour"), ("day", "Day (UTC contracts only)")]


class IotUsageMetric(models.Model):
    _name = "iot.usage.metric"
    _description = "IoT Usage Metric"
    _order = "code"
    _rec_names_search = ["code", "name"]

    code = fields.Char(
        required=True, index=True, help="What device platforms send as 'metric' (e.g. kwh, messages)."
    )
    name = fields.Char(required=True, translate=True)
    uom_id = fields.Many2one("uom.uom", string="Unit of Measure")
    active = fields.Boolean(default=True)
    bucket_interval = fields.Selection(
        BUCKET_INTERVALS,
        required=True,
        default="hour",
        help="Readings are added up per device and interval as they arrive; billing reads these "
        "usage buckets. Billing periods start at midnight in the contract's time zone, which must "
        "fall on the interval's grid: hours suit every zone whose offset is a whole number of hours, "
        "minutes every zone (India, Nepal, Newfoundland ...), days UTC contracts only.",
    )

    _sql_constraints = [("code_unique", "unique(code)", "A metric code must be unique.")]

    @api.constrains("bucket_interval")
    def _check_bucket_interval(self):
        self.env["iot.usage.bucket"].flush_model(["metric_id"])
        for metric in self:
            self.env.cr.execute(
                """SELECT 1 FROM iot_usage_bucket WHERE metric_id = %s
                    AND bucket_stop - bucket_start != ('1 ' || %s)::interval LIMIT 1""",
                (metric.id, metric.bucket_interval),
            )
            if self.env.cr.rowcount:
                raise ValidationError(self.env._(
                    "Metric %s already has usage in %s buckets: create a new metric for another interval.",
                    metric.code, metric.bucket_interval,
                ))
        zones = {tz for tz in self.env["iot.contract"].search([]).mapped("tz") if tz}
        for metric in self:
            if bad := misaligned_zones(zones, metric.bucket_interval):
                raise ValidationError(self.env._(
                    "Contracts in %(zones)s start their periods inside a %(interval)s of metric %(code)s: "
                    "choose a shorter interval.",
                    zones=", ".join(sorted(bad)), interval=metric.bucket_interval, code=metric.code,
                ))
