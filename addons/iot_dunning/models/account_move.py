from odoo import api, models


class AccountMove(models.Model):
    _inherit = "account.move"

    @api.model_create_multi
    def create(self, vals_list):
        # Dunning fees ride on the contract's next invoice of the billing engine. The
        # engine's line hook is overridden without super() by iot_invoice_grouping,
        # so the fee lines join here, where every invoice of a billing run is created.
        for vals in vals_list:
            if vals.get("iot_billing_run_id") and vals.get("move_type") == "out_invoice":
                contract = self._iot_billing_contract(vals)
                if contract:
                    vals["invoice_line_ids"] = (
                        list(vals.get("invoice_line_ids") or []) + contract._iot_dunning_fee_lines()
                    )
        return super().create(vals_list)

    def write(self, vals):
        # A payment without journal entry (no outstanding account on its method) pays an
        # invoice by this link alone, with no reconciliation: release on it too.
        result = super().write(vals)
        if "matched_payment_ids" in vals:
            self.filtered(lambda move: move.move_type == "out_invoice")._iot_dunning_release_paid()
        return result

    @api.model
    def _iot_billing_contract(self, vals):
        """The contract a billing-run invoice is for: its origin is the contract reference."""
        if not vals.get("invoice_origin") or not vals.get("company_id"):
            return self.env["iot.contract"]
        # sudo: the billing run already read this contract to build the invoice.
        return (
            self.env["iot.contract"]
            .sudo()
            .search([("company_id", "=", vals["company_id"]), ("reference", "=", vals["invoice_origin"])], limit=1)
        )

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
