import os
import socket
import threading

from odoo import api, fields, models


class IotBillingRunChunk(models.Model):
    """One chunk of a billing run (one committed unit of its work: a chunk of contracts, or a
    step of a contract billed in steps): what it billed and what it cost.

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

    @api.model
    def _record(self, run, tally, seconds):
        """Record one chunk of ``run`` (a ``ChunkTally``) and the contracts that failed in it."""
        self.env["iot.billing.run.error"].create(tally.errors)
        thread = threading.current_thread().name
        return self.create({
            "run_id": run.id,
            "contract_count": tally.contracts,
            "schedule_count": tally.schedules,
            "invoice_count": tally.invoices,
            "skipped_count": tally.skipped,
            "error_count": len(tally.errors),
            "duration": seconds,
            "worker": "%s:%d/%s" % (socket.gethostname(), os.getpid(), thread),
        })
