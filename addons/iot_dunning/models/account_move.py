from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def write(self, vals):
        # A payment without journal entry (no outstanding account on its method) pays an
        # invoice by this link alone, with no reconciliation: release on it too.
        result = super().write(vals)
        if "matched_payment_ids" in vals:
            self.filtered(lambda move: move.move_type == "out_invoice")._iot_dunning_release_paid()
        return result

    def _iot_dunning_release_paid(self):
        """Release the devices of the contracts of these invoices that are no longer
        at a blocking level; called where a payment reaches them (reconciliation,
        payment state)."""
        # sudo: whoever registers the payment, the devices of the paid contracts are released.
        contracts = (
            self.env["iot.invoicing.schedule"]
            .sudo()
            .search([("invoice_id", "in", self.ids)])
            .contract_id.filtered("iot_dunning_blocked_since")
        )
        if contracts:
            contracts._iot_dunning_after_payment()
