from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools.float_utils import float_compare


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
    iot_contract_id = fields.Many2one(
        "iot.contract",
        string="IoT Contract",
        readonly=True,
        copy=False,
        index="btree_not_null",
        groups="iot_device.group_iot_user",
        help="The contract whose termination issued this credit note.",
    )

    def _iot_pair_product_lines(self, billed):
        """``[(product line, what it bills)]`` of this new invoice: its product lines are created in
        the order of their commands, so the n-th bills ``billed[n]``. Every product line must bill
        something of ``billed`` (a mismatch raises)."""
        self.ensure_one()
        product_lines = self.invoice_line_ids.filtered(lambda line: line.display_type == "product")
        return list(zip(product_lines.sorted("id"), billed, strict=True))

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

    # ------------------------------------------------------------------
    # Undoing an IoT invoice frees its periods (README, Accounting rules)
    # ------------------------------------------------------------------
    def _iot_free_periods(self):
        """Return the schedules billed on these invoices to *planned*: the next run bills them again.

        The stored links to the invoice lines are cleared (the usage side resets its
        readings and valuations on the state change), and the items re-plan the freed
        periods (a period past a termination since then is prorated or cancelled).
        sudo: accountants undo invoices without write access to the IoT schedules.
        """
        schedules = self.env["iot.invoicing.schedule"].sudo().search([("invoice_id", "in", self.ids)])
        if not schedules:
            return
        schedules.write({"state": "planned", "invoice_id": False, "fixed_line_id": False})
        schedules.contract_item_id._sync_schedules()

    def _iot_check_no_termination_credit(self):
        """Billed again on its new dates, a freed period would keep a credit for days no longer billed."""
        schedules = self.env["iot.invoicing.schedule"].sudo().search([("invoice_id", "in", self.ids)])
        credited = schedules.credit_line_id.move_id.filtered(lambda refund: refund.state == "posted")
        if credited:
            raise UserError(
                self.env._(
                    "Credit note %(refund)s gave back part of this invoice after a termination: "
                    "cancel it first, then this invoice.",
                    refund=credited[0].display_name,
                )
            )

    def _iot_freed_invoices(self):
        """The IoT invoices among these whose periods were freed (cancelled, fully credited)."""
        run_invoices = self.filtered(lambda move: move.move_type == "out_invoice" and move.iot_billing_run_id)
        if not run_invoices:
            return run_invoices
        billing = {
            invoice.id
            for (invoice,) in self.env["iot.invoicing.schedule"]
            .sudo()
            ._read_group([("invoice_id", "in", run_invoices.ids)], ["invoice_id"])
        }
        return run_invoices.filtered(lambda move: move.id not in billing)

    def button_cancel(self):
        self._iot_check_no_termination_credit()
        result = super().button_cancel()
        cancelled = self.filtered(lambda move: move.state == "cancel")
        cancelled._iot_free_periods()
        # A cancelled termination credit gives nothing back: the schedule may be credited anew.
        self.env["iot.invoicing.schedule"].sudo().search(
            [("credit_line_id", "in", cancelled.filtered(lambda move: move.move_type == "out_refund").line_ids.ids)]
        ).write({"credit_line_id": False})
        # account returns None, which XML-RPC cannot send back: accountants cancel over RPC too.
        return True if result is None else result

    def button_draft(self):
        refunds = self.filtered(lambda move: move.move_type == "out_refund" and move.state == "posted")
        if refunds.reversed_entry_id._iot_freed_invoices():
            raise UserError(
                self.env._(
                    "This credit note cancelled an IoT invoice in full: its periods went back to the "
                    "billing schedule and may have been billed again. Issue a new invoice instead of "
                    "resetting the credit note."
                )
            )
        return super().button_draft()

    @api.ondelete(at_uninstall=False)
    def _iot_unlink_free_periods(self):
        self._iot_check_no_termination_credit()
        self._iot_free_periods()

    def _iot_check_not_being_billed(self):
        """An invoice a billing run is still filling (a contract billed in steps) is posted by the run."""
        self.env["iot.billing.run.part"].flush_model()
        self.env["iot.billing.run.line"].flush_model()
        self.env.cr.execute(
            """SELECT line.move_id FROM iot_billing_run_line line
                WHERE line.move_id = ANY(%s)
                  AND EXISTS (SELECT 1 FROM iot_billing_run_part part
                               WHERE part.run_id = line.run_id AND part.contract_id = line.contract_id)
                LIMIT 1""",
            [self.ids],
        )
        row = self.env.cr.fetchone()
        if row:
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s is still being built by its billing run (a large contract is billed "
                    "in steps): the run posts it once every device is on it.",
                    invoice=self.browse(row[0]).display_name,
                )
            )

    def _post(self, soft=True):
        self._iot_check_not_being_billed()
        freed = self._iot_freed_invoices()
        if freed:
            raise UserError(
                self.env._(
                    "Invoice %(invoice)s was cancelled and its periods went back to the billing "
                    "schedule: the next billing run bills them again. Posting it would bill them "
                    "twice; delete it or leave it cancelled.",
                    invoice=freed[0].display_name,
                )
            )
        posted = super()._post(soft)
        posted._iot_free_fully_credited()
        return posted

    def _iot_free_fully_credited(self):
        """A posted credit note (or several) reaching the total of an IoT invoice frees its periods.

        A partial credit note is a commercial correction: the periods stay invoiced.
        """
        originals = self.filtered(lambda move: move.move_type == "out_refund").reversed_entry_id.filtered(
            lambda move: move.iot_billing_run_id and move.state == "posted"
        )
        if not originals:
            return
        credited = dict(
            self._read_group(
                [
                    ("reversed_entry_id", "in", originals.ids),
                    ("move_type", "=", "out_refund"),
                    ("state", "=", "posted"),
                ],
                ["reversed_entry_id"],
                ["amount_total:sum"],
            )
        )
        originals.filtered(
            lambda invoice: (
                float_compare(
                    credited.get(invoice, 0.0), invoice.amount_total, precision_rounding=invoice.currency_id.rounding
                )
                >= 0
            )
        )._iot_free_periods()
