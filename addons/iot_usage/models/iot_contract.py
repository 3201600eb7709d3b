from odoo import api, fields, models


class IotContract(models.Model):
    _inherit = "iot.contract"

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
