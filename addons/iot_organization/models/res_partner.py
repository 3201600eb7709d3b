from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    iot_collective_contract_ids = fields.One2many(
        "iot.contract", "iot_payer_id", string="IoT Contracts Paid",
        domain=[("iot_billed_to_parent", "=", True)],
        help="Contracts of subsidiaries billed to this partner on its collective invoices.",
    )
    iot_collective_contract_count = fields.Integer(
        string="Subsidiary Contracts", compute="_compute_iot_collective_contract_count"
    )

    def write(self, vals):
        if "parent_id" not in vals:
            return super().write(vals)
        # Re-parenting changes the payer of the contracts billed to the parent: recorded from today.
        contracts = self.env["iot.contract"].sudo().search([("partner_id", "child_of", self.ids)])
        before = contracts._iot_payer_snapshot()
        result = super().write(vals)
        self.env["iot.contract.payer"]._iot_record_changes(contracts, before)
        return result

    def _compute_iot_collective_contract_count(self):
        counts = dict(self.env["iot.contract"]._read_group(
            [("iot_payer_id", "in", self.ids), ("iot_billed_to_parent", "=", True)], ["iot_payer_id"], ["__count"]
        ))
        for partner in self:
            partner.iot_collective_contract_count = counts.get(partner, 0)

    def action_iot_view_collective_contracts(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_contract_action")
        action["domain"] = [("iot_payer_id", "=", self.id), ("iot_billed_to_parent", "=", True)]
        action["context"] = {"create": False}
        return action
