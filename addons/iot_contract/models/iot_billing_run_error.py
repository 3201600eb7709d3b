from odoo import fields, models


class IotBillingRunError(models.Model):
    _name = "iot.billing.run.error"
    _description = "IoT Billing Run Error"
    _order = "run_id, id"

    run_id = fields.Many2one("iot.billing.run", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="run_id.company_id", store=True, index=True)
    contract_id = fields.Many2one("iot.contract", ondelete="set null")
    schedule_count = fields.Integer(help="Due schedules of the contract left planned.")
    message = fields.Text(required=True)
