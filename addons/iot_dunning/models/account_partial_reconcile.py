from odoo import api, models


class AccountPartialReconcile(models.Model):
    _inherit = "account.partial.reconcile"

    @api.model_create_multi
    def create(self, vals_list):
        # Every way an invoice gets paid (registered payment, bank statement line,
        # manual matching) creates partials: devices blocked for unpaid are
        # released in this same transaction, and their 'unblock' goes out on commit.
        partials = super().create(vals_list)
        partials._iot_dunning_release_paid()
        return partials

    def _iot_dunning_release_paid(self):
        moves = (self.debit_move_id | self.credit_move_id).move_id.filtered(
            lambda move: move.move_type == "out_invoice"
        )
        if moves:
            moves._iot_dunning_release_paid()
