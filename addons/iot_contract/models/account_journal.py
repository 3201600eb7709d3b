from odoo import api, fields, models


class AccountJournal(models.Model):
    _inherit = "account.journal"

    iot_monthly_sequence = fields.Boolean(
        string="Monthly Invoice Numbers",
        compute="_compute_iot_monthly_sequence",
        store=True,
        readonly=False,
        help="Number customer invoices per month (INV/2022/04/0001) instead of per year. "
        "On by default for sales journals; a journal that already numbers its invoices "
        "keeps its format until a new period starts without any previous number.",
    )

    @api.depends("type")
    def _compute_iot_monthly_sequence(self):
        # Stored compute: existing sales journals get the flag at install,
        # and so do those of companies created later.
        for journal in self:
            journal.iot_monthly_sequence = journal.type == "sale"
