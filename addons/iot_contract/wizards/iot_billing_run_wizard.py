from odoo import fields, models


class IotBillingRunWizard(models.TransientModel):
    _name = "iot.billing.run.wizard"
    _description = "Run IoT Billing"

    date = fields.Date(
        required=True,
        default=fields.Date.context_today,
        help="Planned schedules due on or before this date are invoiced.",
    )
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company, readonly=True)

    def action_run(self):
        self.ensure_one()
        run = self.env["iot.billing.run"].create({"date": self.date, "company_id": self.company_id.id})
        run.action_run()  # billed now when it fits in one chunk, else in the background
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_billing_run_action")
        action.update({"res_id": run.id, "view_mode": "form", "views": [(False, "form")]})
        return action
