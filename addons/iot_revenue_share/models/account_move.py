from odoo import fields, models
from odoo.exceptions import UserError


class AccountMove(models.Model):
    _inherit = "account.move"

    iot_revenue_share_amount = fields.Monetary(
        string="Revenue shared",
        compute="_compute_iot_revenue_share",
        currency_field="company_currency_id",
        groups="iot_contract.group_iot_billing",
        help="What this customer document gave partners in revenue share settlements (company currency).",
    )
    iot_revenue_share_count = fields.Integer(
        compute="_compute_iot_revenue_share", groups="iot_contract.group_iot_billing"
    )

    def _compute_iot_revenue_share(self):
        totals = {
            move: (count, amount)
            for move, count, amount in self.env["iot.revenue.share.line"]._read_group(
                [("invoice_id", "in", self.ids)], ["invoice_id"], ["__count", "share_amount:sum"]
            )
        }
        for move in self:
            move.iot_revenue_share_count, move.iot_revenue_share_amount = totals.get(move, (0, 0.0))

    def action_iot_revenue_share_lines(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_revenue_share.iot_revenue_share_line_action")
        action["domain"] = [("invoice_id", "=", self.id)]
        return action

    def button_draft(self):
        # A shared document reset to draft would keep its shares in a settlement: the
        # correction of a shared invoice is a credit note, whose share the next settlement takes back.
        shared = self.env["iot.revenue.share.line"].sudo()._read_group(
            [("invoice_id", "in", self.ids)], ["invoice_id"]
        )
        if shared:
            raise UserError(
                self.env._(
                    "%s was shared with partners in a revenue share settlement: issue a credit note "
                    "instead of resetting it to draft.",
                    shared[0][0].display_name,
                )
            )
        return super().button_draft()
