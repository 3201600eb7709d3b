from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .iot_usage_bucket import misaligned_zones


class IotContract(models.Model):
    _inherit = "iot.contract"

    @api.constrains("tz")
    def _check_tz_fits_usage_buckets(self):
        """A period must hold whole usage buckets: its first midnight cannot fall inside one."""
        zones = {contract.tz for contract in self if contract.tz}
        for metric in self.env["iot.usage.metric"].with_context(active_test=False).search([]):
            if bad := misaligned_zones(zones, metric.bucket_interval):
                raise ValidationError(self.env._(
                    "In %(zones)s, midnight falls inside the %(interval)s buckets of metric %(code)s: set the "
                    "metric's bucket interval to minute (Usage > Configuration > Metrics) before creating "
                    "contracts in this time zone.",
                    zones=", ".join(sorted(bad)), interval=metric.bucket_interval, code=metric.code,
                ))

    def _iot_current_schedules(self):
        """Planned schedules whose period has started: the usage users want to see now."""
        return self.env["iot.invoicing.schedule"].search(
            [
                ("contract_id", "in", self.ids),
                ("state", "=", "planned"),
                ("date_from", "<=", fields.Date.context_today(self)),
            ]
        )

    def action_iot_value_usage(self):
        """Value the running periods' usage now, without invoicing anything.

        The billing run values them again at the end of the period, with every
        reading received by then.
        """
        for company, contracts in self.grouped("company_id").items():
            contracts.with_company(company)._iot_current_schedules()._iot_value_usage(None)
        return True

    @api.model
    def _cron_value_current_usage(self):
        self.search([("state", "=", "running")]).action_iot_value_usage()
