from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    iot_dunning_level_id = fields.Many2one(
        "iot.dunning.level",
        string="IoT Dunning Level",
        compute="_compute_iot_dunning",
        groups="iot_device.group_iot_user",
        help="Highest dunning level of the customer's IoT contracts.",
    )
    iot_dunning_blocked_since = fields.Datetime(
        string="IoT Devices Blocked Since", compute="_compute_iot_dunning", groups="iot_device.group_iot_user"
    )

    def _compute_iot_dunning(self):
        contracts = self.env["iot.contract"].search(
            [("partner_id", "child_of", self.commercial_partner_id.ids), ("iot_dunning_level_id", "!=", False)]
        )
        for partner in self:
            own = contracts.filtered(
                lambda contract, partner=partner: (
                    # The payer's: a subsidiary's contract billed to its parent is the parent's debt.
                    contract._iot_invoice_partner().commercial_partner_id == partner.commercial_partner_id
                )
            )
            levels = own.iot_dunning_level_id.sorted("days_after_due")
            partner.iot_dunning_level_id = levels[-1:]
            blocked = [date for date in own.mapped("iot_dunning_blocked_since") if date]
            partner.iot_dunning_blocked_since = min(blocked) if blocked else False
