from odoo import api, fields, models

BILL_TO = [("self", "Bill Self"), ("parent", "Bill Parent")]


class IotContract(models.Model):
    _inherit = "iot.contract"

    iot_bill_to = fields.Selection(
        BILL_TO,
        string="Bill To",
        required=True,
        default="self",
        tracking=True,
        help="Bill Parent: the periods of this subsidiary's contract go on its parent's collective "
        "invoice, one per invoice date, in a section named after the subsidiary. A customer "
        "without a parent is billed itself.",
    )
    iot_billed_to_parent = fields.Boolean(
        string="Billed to Parent",
        compute="_compute_iot_payer",
        store=True,
        index=True,
        help="Bill Parent, and the customer has a parent: its periods go on the parent's collective invoice.",
    )
    iot_payer_id = fields.Many2one(
        "res.partner",
        string="Payer",
        compute="_compute_iot_payer",
        store=True,
        index=True,
        help="Who the invoices go to, pays them and is dunned for them: the customer, or the "
        "commercial entity of its parent when billed to the parent. Read when a period is billed.",
    )

    @api.depends("iot_bill_to", "partner_id", "partner_id.parent_id", "partner_id.parent_id.commercial_partner_id")
    def _compute_iot_payer(self):
        for contract in self:
            parent = contract.partner_id.parent_id.commercial_partner_id
            contract.iot_billed_to_parent = contract.iot_bill_to == "parent" and bool(parent)
            contract.iot_payer_id = parent if contract.iot_billed_to_parent else contract.partner_id

    iot_payer_ids = fields.One2many("iot.contract.payer", "contract_id", string="Payer History")

    @api.model_create_multi
    def create(self, vals_list):
        contracts = super().create(vals_list)
        self.env["iot.contract.payer"]._iot_record_changes(contracts, {})
        return contracts

    def write(self, vals):
        if not {"iot_bill_to", "partner_id"} & set(vals):
            return super().write(vals)
        before = self._iot_payer_snapshot()
        result = super().write(vals)
        self.env["iot.contract.payer"]._iot_record_changes(self, before)
        return result

    def _iot_payer_snapshot(self):
        return {contract.id: (contract.iot_payer_id.id, contract.iot_billed_to_parent) for contract in self}

    def _iot_payers_on(self, contract_dates):
        """{(contract, day): (payer, billed to parent)} on each day: from the payer history (a
        period is billed to the payer of its invoice date), else the contract's payer now."""
        recorded = self.env["iot.contract.payer"]._iot_payers_on(
            [(contract.id, day) for contract, day in contract_dates]
        )
        Partner = self.env["res.partner"]
        payers = {}
        for contract, day in contract_dates:
            payer_id, billed_to_parent = recorded.get(
                (contract.id, day), (contract.iot_payer_id.id, contract.iot_billed_to_parent)
            )
            payers[(contract, day)] = (Partner.browse(payer_id), billed_to_parent)
        return payers

    def _iot_prepare_invoice_vals(self, invoice_date):
        vals = super()._iot_prepare_invoice_vals(invoice_date)
        payer, _billed_to_parent = self._iot_payers_on([(self, invoice_date)])[(self, invoice_date)]
        if payer:
            vals["partner_id"] = payer.id
        return vals

    def _iot_invoice_partner(self):
        self.ensure_one()
        return self.iot_payer_id or super()._iot_invoice_partner()

    def _iot_billed_in_steps(self):
        # A collective invoice is built from its contracts' lines in one transaction.
        return not self.iot_billed_to_parent and super()._iot_billed_in_steps()

    def _iot_collective_key(self, invoice_date, payer, billed_to_parent):
        """The collective invoice this contract's invoice of ``invoice_date`` goes on, given its
        payer on that day, or None (its own invoice): contracts of one key share one invoice."""
        self.ensure_one()
        if not billed_to_parent:
            return None
        return (payer.id, self.company_id.id, self.currency_id.id, self.journal_id.id, self.auto_post, invoice_date)
