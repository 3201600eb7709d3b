from odoo import fields, models

GRANT_KINDS = [
    ("topup", "Top-up"),
    ("promotion", "Promotion"),
    ("sponsored", "Sponsored"),
    ("rollover", "Rollover"),
]
GRANT_STATES = [
    ("waiting", "Waiting for Payment"),
    ("active", "Active"),
    ("exhausted", "Exhausted"),
    ("expired", "Expired"),
]


class IotWalletGrant(models.Model):
    """Credit put in a wallet. A debit is paid by the grants whose scope covers it, by
    priority (lower first), then expiry (soonest first, none last), then age (oldest first)."""

    _name = "iot.wallet.grant"
    _description = "IoT Prepaid Credit Grant"
    _order = "priority, expires_at, id"
    _check_company_auto = True

    name = fields.Char(required=True, default=lambda self: self.env._("Credit"))
    wallet_id = fields.Many2one("iot.wallet", required=True, index=True, ondelete="restrict", check_company=True)
    contract_id = fields.Many2one(related="wallet_id.contract_id", store=True, index=True)
    company_id = fields.Many2one(related="wallet_id.company_id", store=True, index=True, precompute=True)
    currency_id = fields.Many2one(related="wallet_id.currency_id", store=True, precompute=True)
    kind = fields.Selection(GRANT_KINDS, required=True, default="topup")
    amount = fields.Monetary(required=True, help="Credit granted, tax excluded.")
    remaining = fields.Monetary(readonly=True, copy=False, help="Maintained by the ledger entries.")
    priority = fields.Integer(default=10, help="Lower is consumed first.")
    expires_at = fields.Datetime(index="btree_not_null", help="The remainder leaves the balance at this time.")
    calculator_ids = fields.Many2many(
        "iot.usage.calculator", string="Usage Rules", help="The usage this credit pays; all when empty.",
    )
    device_ids = fields.Many2many(
        "iot_billing.device", string="Devices", check_company=True,
        help="The devices whose usage this credit pays; all the contract's when empty.",
    )
    move_id = fields.Many2one(
        "account.move", string="Top-up Invoice", readonly=True, copy=False, index="btree_not_null",
    )
    payment_state = fields.Selection(related="move_id.payment_state", string="Invoice Payment")
    activated_at = fields.Datetime(readonly=True, copy=False)
    state = fields.Selection(GRANT_STATES, required=True, default="waiting", readonly=True, copy=False, index=True)
    entry_ids = fields.One2many("iot.wallet.entry", "grant_id", string="Ledger")
