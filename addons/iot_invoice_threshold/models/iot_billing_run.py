from odoo import fields, models


class IotBillingRun(models.Model):
    _inherit = "iot.billing.run"

    held_schedule_count = fields.Integer(
        string="Schedules Held",
        compute="_compute_held_schedule_count",
        help="Due schedules this run held below their contract's invoicing level (counted among the "
        "schedules done), still waiting for a later invoice.",
    )

    def _compute_held_schedule_count(self):
        counts = dict(
            self.env["iot.invoicing.schedule"]._read_group(
                [("iot_hold_run_id", "in", self.ids), ("state", "=", "planned")], ["iot_hold_run_id"], ["__count"]
            )
        )
        for run in self:
            run.held_schedule_count = counts.get(run, 0)

    def _iot_status(self):
        status = super()._iot_status()
        status["schedules_held"] = self.held_schedule_count
        return status
