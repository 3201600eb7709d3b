from odoo import api, fields, models
from odoo.addons.iot_device.tools import ApiInputError
from odoo.exceptions import UserError


class IotRevenueShareSettleWizard(models.TransientModel):
    _name = "iot.revenue.share.settle.wizard"
    _description = "Settle IoT Revenue Shares"

    period = fields.Char(required=True, default=lambda self: self._default_period(), help="YYYY-MM")
    mode = fields.Selection(
        [("bill", "Vendor bill (self-billing)"), ("entry", "Commission journal entry")],
        required=True,
        default=lambda self: self.env.company.iot_revenue_share_mode,
    )

    @api.model
    def _default_period(self):
        last_month = fields.Date.subtract(fields.Date.context_today(self).replace(day=1), days=1)
        return "%04d-%02d" % (last_month.year, last_month.month)

    def action_settle(self):
        self.ensure_one()
        try:
            settlements = self.env["iot.revenue.share.settlement"]._iot_settle(self.period.strip(), self.mode)
        except ApiInputError as error:
            raise UserError(str(error)) from None
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "iot_revenue_share.iot_revenue_share_settlement_action"
        )
        action["domain"] = [("id", "in", settlements.ids)]
        return action
