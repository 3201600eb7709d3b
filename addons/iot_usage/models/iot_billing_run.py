from datetime import datetime, timedelta

from odoo import models


class IotBillingRun(models.Model):
    _inherit = "iot.billing.run"

    def _iot_cutoff_date(self):
        return self.date - timedelta(days=self.company_id.iot_usage_grace_days)

    def _due_schedule_domain(self):
        domain = super()._due_schedule_domain()
        if self.company_id.iot_usage_grace_days:
            domain = [("invoice_date", "<=", self._iot_cutoff_date())] + domain
        return domain

    def _iot_run_prepare(self):
        # Usage no open period can take any more, events that came after their period's
        # invoice: a late-usage schedule, due in this run.
        result = super()._iot_run_prepare()
        previous = self.search(
            [("company_id", "=", self.company_id.id), ("id", "<", self.id), ("state", "!=", "draft")],
            order="id desc", limit=1,
        )
        since = previous.create_date or datetime.min
        self.env["iot.usage.bucket"]._plan_late(self.company_id, self._iot_cutoff_date(), since)
        return result

    def _iot_run_finish(self):
        # Once a run is past their period, usage no contract item covers will never be
        # billed: reject them visibly (they can be re-processed after an activation).
        result = super()._iot_run_finish()
        self.env["iot.usage.bucket"]._reject_orphans(self.company_id, self._iot_cutoff_date())
        return result
