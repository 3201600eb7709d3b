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

    def _iot_invoice_partner(self):
        self.ensure_one()
        return self.iot_payer_id or super()._iot_invoice_partner()

    def _iot_billed_in_steps(self):
        # A collective invoice is built from its contracts' lines in one transaction.
        return not self.iot_billed_to_parent and super()._iot_billed_in_steps()

    def _iot_collective_key(self, invoice_date):
        """The collective invoice this contract's invoice of ``invoice_date`` goes on, or None
        (its own invoice): contracts of one key are billed on one invoice."""
        self.ensure_one()
        if not self.iot_billed_to_parent:
            return None
        return (self.iot_payer_id.id, self.company_id.id, self.currency_id.id, self.journal_id.id,
                self.auto_post, invoice_date)
