from odoo import api, fields, models


class IotWalletTopup(models.TransientModel):
    """Sell prepaid credit: an invoice of the Prepaid Credit product to the contract's customer,
    and the grant it pays for (credit once paid, or once posted; see the wallet)."""

    _name = "iot.wallet.topup"
    _description = "IoT Prepaid Credit Top-up"

    wallet_id = fields.Many2one("iot.wallet", required=True, ondelete="cascade")
    currency_id = fields.Many2one(related="wallet_id.currency_id")
    amount = fields.Monetary(required=True, help="Credit sold, tax excluded.")
    priority = fields.Integer(default=10)
    expires_at = fields.Datetime()
    post = fields.Boolean(default=True, help="Post the invoice now.")

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if self.env.context.get("active_model") == "iot.wallet" and "wallet_id" in fields_list:
            values.setdefault("wallet_id", self.env.context.get("active_id"))
        elif self.env.context.get("active_model") == "iot.contract" and "wallet_id" in fields_list:
            contract = self.env["iot.contract"].browse(self.env.context.get("active_id"))
            values.setdefault("wallet_id", self.env["iot.wallet"]._for_contracts(contract).id)
        return values

    def action_create_invoice(self):
        self.ensure_one()
        move = self.wallet_id._create_topup(self.amount, priority=self.priority, expires_at=self.expires_at,
                                            post=self.post)
        return {"type": "ir.actions.act_window", "res_model": "account.move", "res_id": move.id, "view_mode": "form"}

