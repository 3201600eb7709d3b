from odoo import api, fields, models

PREPAID_MODES = [
    ("plan", "As the Plan Says"),
    ("prepaid", "Prepaid"),
    ("postpaid", "Postpaid"),
]


class IotContract(models.Model):
    _inherit = "iot.contract"

    iot_prepaid = fields.Selection(
        PREPAID_MODES, string="Prepaid", required=True, default="plan", tracking=True,
        help="Whether the usage of the contract's items is paid from its prepaid credit; by default "
        "the plan's Prepaid setting decides.",
    )
    # One at most (unique on the wallet): a One2many, so that the figures below follow it.
    iot_wallet_ids = fields.One2many("iot.wallet", "contract_id", string="Wallets")
    iot_wallet_balance = fields.Monetary(compute="_compute_iot_wallet_figures", string="Credit Balance")
    iot_wallet_available = fields.Monetary(compute="_compute_iot_wallet_figures", string="Credit Available")
    iot_wallet_burn_rate = fields.Monetary(compute="_compute_iot_wallet_figures", string="Credit per Day")

    @api.depends("iot_wallet_ids.balance", "iot_wallet_ids.reserved")
    def _compute_iot_wallet_figures(self):
        for contract in self:
            wallet = contract.iot_wallet_ids[:1]
            contract.iot_wallet_balance = wallet.balance
            contract.iot_wallet_available = wallet.available
            contract.iot_wallet_burn_rate = wallet.burn_rate

    def _iot_prepaid_items(self):
        """The contracts' items paid from prepaid credit."""
        return self.item_ids.filtered(lambda item: item._iot_is_prepaid())

    def action_iot_open_wallet(self):
        self.ensure_one()
        wallet = self.env["iot.wallet"]._for_contracts(self)
        return {
            "type": "ir.actions.act_window",
            "res_model": "iot.wallet",
            "res_id": wallet.id,
            "view_mode": "form",
        }

    @api.model
    def _iot_prepaid_sql(self, contract, template):
        """SQL condition: the item of ``contract`` on plan ``template`` (table aliases) is prepaid."""
        return (
            "(%(contract)s.iot_prepaid = 'prepaid' OR (%(contract)s.iot_prepaid = 'plan' AND "
            "coalesce(%(template)s.iot_prepaid, false)))" % {"contract": contract, "template": template}
        )
