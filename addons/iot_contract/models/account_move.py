from odoo import fields, models


class AccountMove(models.Model):
    _inherit = "account.move"

    iot_schedule_ids = fields.One2many(
        "iot.invoicing.schedule",
        "invoice_id",
        string="Invoicing Schedules",
        groups="iot_device.group_iot_user",
    )
    iot_billing_run_id = fields.Many2one(
        "iot.billing.run", string="Billing Run", readonly=True, copy=False, index="btree_not_null"
    )

    def _iot_monthly_numbering(self):
        return self.journal_id.iot_monthly_sequence and self.move_type in (
            "out_invoice",
            "out_refund",
        )

    def _get_starting_sequence(self):
        # EXTENDS account: INV/2022/04/0000 for customer documents of journals
        # flagged iot_monthly_sequence.
        if not self._iot_monthly_numbering():
            return super()._get_starting_sequence()
        move_date = self.date or self.invoice_date or fields.Date.context_today(self)
        starting_sequence = "%s/%04d/%02d/0000" % (
            self.journal_id.code,
            move_date.year,
            move_date.month,
        )
        if self.journal_id.refund_sequence and self.move_type == "out_refund":
            starting_sequence = "R" + starting_sequence
        return starting_sequence

    def _get_last_sequence_domain(self, relaxed=False):
        # EXTENDS account: in a monthly-numbered journal, the previous number is
        # the last one of the same month prefix (INV/2022/04/), whatever format
        # the journal used before (e.g. yearly numbers of invoices made before
        # the flag was set): a new month always starts at 0001.
        if not self._iot_monthly_numbering() or not self.date:
            return super()._get_last_sequence_domain(relaxed)
        return (
            "WHERE journal_id = %(journal_id)s AND name != '/' AND sequence_prefix = %(iot_sequence_prefix)s",
            {
                "journal_id": self.journal_id.id,
                "iot_sequence_prefix": self._get_starting_sequence()[:-4],
            },
        )
