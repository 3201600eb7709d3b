from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _post(self, soft=True):
        posted = super()._post(soft)
        # Credit without waiting for the payment, where the wallet says so.
        grants = self.env["iot.wallet.grant"].sudo().search(
            [("move_id", "in", posted.ids), ("state", "=", "waiting"), ("wallet_id.credit_after_payment", "=", False)]
        )
        grants._activate()
        return posted

    def _invoice_paid_hook(self):
        # Called by every way an invoice gets paid (payment, statement line, matching): the
        # top-up's credit arrives in the payment's transaction, devices blocked for no credit
        # are unblocked in it and their 'unblock' goes out on commit.
        result = super()._invoice_paid_hook()
        # sudo: the payment is the accountant's; the ledger follows it.
        self.env["iot.wallet.grant"].sudo().search([("move_id", "in", self.ids), ("state", "=", "waiting")])._activate()
        return result
