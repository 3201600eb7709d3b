from odoo import fields, models


class IotBillingRunChunk(models.Model):
    """One committed unit of a billing run's work: what it billed and what it cost.

    Inserted once per chunk (never updated), so workers billing chunks of one run
    in parallel never contend for a row; the run's counters are their sums.
    """

    _name = "iot.billing.run.chunk"
    _description = "IoT Billing Run Chunk"
    _order = "run_id, id"

    run_id = fields.Many2one("iot.billing.run", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="run_id.company_id", store=True, index=True)
    contract_count = fields.Integer(string="Contracts")
    schedule_count = fields.Integer(string="Schedules Invoiced")
    invoice_count = fields.Integer(string="Invoices")
    skipped_count = fields.Integer(
        string="Schedules Skipped", help="Due schedules another billing run held (runs answered at once only)."
    )
    error_count = fields.Integer(string="Contracts Failed")
    duration = fields.Float(string="Duration (s)", digits=(16, 2))
    worker = fields.Char(help="Process and thread that billed the chunk.")
