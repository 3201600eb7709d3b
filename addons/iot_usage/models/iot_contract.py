from odoo import api, fields, models
from odoo.addons.iot_contract.tools import CommittedSteps, Outcome, try_lock_for_valuation
from odoo.exceptions import UserError, ValidationError

from .iot_usage_bucket import misaligned_zones

# Contracts valued per committed step of the daily valuation cron (each step holds the
# company's billing lock: a billing run of the company waits at most one step).
VALUATION_CHUNK_CONTRACTS = 50
# The daily pass's position: "<date>:<last contract id valued>" (a cron call left
# unfinished by Odoo's limits goes on from there).
VALUATION_CURSOR = "iot_usage.valuation_cursor"


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
        reading received by then. Valuation and billing of one company take turns
        (``iot_contract/tools/locks.py``): while a billing chunk holds the
        company's schedules this refuses, rather than make the run skip them.
        """
        for company, contracts in self.grouped("company_id").items():
            if not try_lock_for_valuation(self.env.cr, company.id):
                raise UserError(
                    self.env._(
                        "A billing run of %(company)s is invoicing its schedules right now (it values the "
                        "periods it bills). Update the usage again when the run is done.",
                        company=company.name,
                    )
                )
            contracts.with_company(company)._iot_current_schedules()._iot_value_usage(None)
        return True

    @api.model
    def _cron_value_current_usage(self):
        """Daily: value the running periods of every running contract, in committed steps.

        Each step (``CommittedSteps``) values a few contracts, each company's under its
        billing lock; a company whose billing run holds the lock, or is running,
        is left for the next day (the run values what it bills). A step that met a billing
        chunk committing the same schedules is rolled back and done again by the driver.
        Odoo's progress API calls the cron again while contracts are left; the cursor makes
        a call resume where the last stopped.
        """
        Param = self.env["ir.config_parameter"].sudo()
        today = fields.Date.to_string(fields.Date.context_today(self))
        busy = set(self.env["iot.billing.run"].sudo().search([("state", "=", "running")]).company_id.ids)

        def contracts_left():
            day, _sep, last_id = (Param.get_param(VALUATION_CURSOR) or "").partition(":")
            last_id = int(last_id) if day == today and last_id else 0
            return [("state", "=", "running"), ("id", ">", last_id), ("company_id", "not in", list(busy))]

        def value_next_contracts():
            contracts = self.search(contracts_left(), order="id", limit=VALUATION_CHUNK_CONTRACTS)
            if not contracts:
                return Outcome.FINISHED
            for company, company_contracts in contracts.grouped("company_id").items():
                if try_lock_for_valuation(self.env.cr, company.id):
                    company_contracts.with_company(company)._iot_current_schedules()._iot_value_usage(None)
                else:
                    busy.add(company.id)
            Param.set_param(VALUATION_CURSOR, "%s:%d" % (today, contracts[-1].id))
            return Outcome.DONE

        steps = CommittedSteps(self.env, crons=self.env.ref("iot_usage.iot_usage_value_current_cron").sudo())
        steps.run(value_next_contracts)
        # Steps left, as the steps done are counted.
        steps.report(-(-self.search_count(contracts_left()) // VALUATION_CHUNK_CONTRACTS))
