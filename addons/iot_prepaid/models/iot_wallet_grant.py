from odoo import api, fields, models
from odoo.addons.iot_device.tools import to_decimal
from odoo.exceptions import UserError

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
        "iot.usage.calculator", "iot_wallet_grant_calculator_rel", "grant_id", "calculator_id",
        string="Usage Rules", help="The usage this credit pays; all when empty.",
    )
    device_ids = fields.Many2many(
        "iot_billing.device", "iot_wallet_grant_device_rel", "grant_id", "device_id",
        string="Devices", check_company=True,
        help="The devices whose usage this credit pays; all the contract's when empty.",
    )
    move_id = fields.Many2one(
        "account.move", string="Top-up Invoice", readonly=True, copy=False, index="btree_not_null",
    )
    payment_state = fields.Selection(related="move_id.payment_state", string="Invoice Payment")
    activated_at = fields.Datetime(readonly=True, copy=False)
    state = fields.Selection(GRANT_STATES, required=True, default="waiting", readonly=True, copy=False, index=True)
    entry_ids = fields.One2many("iot.wallet.entry", "grant_id", string="Ledger")

    # Set once the grant is in the ledger: changing them would rewrite what was granted.
    _FROZEN_ONCE_ACTIVE = ("wallet_id", "kind", "amount")

    @api.constrains("amount")
    def _check_amount(self):
        for grant in self:
            if grant.amount <= 0:
                raise UserError(self.env._("A credit grant needs a positive amount."))

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            for name in ("remaining", "state", "activated_at"):
                vals.pop(name, None)
        grants = super().create(vals_list)
        # Credit given (promotion, sponsored, rollover) counts at once; a top-up invoice's
        # credit waits for its payment or posting (iot_prepaid's account.move).
        grants.filtered(lambda grant: not grant.move_id)._activate()
        return grants

    def write(self, vals):
        if not self.env.context.get("iot_wallet_ledger"):
            if {"remaining", "state", "activated_at", "move_id"} & set(vals):
                raise UserError(self.env._("A grant's remainder and state come from the ledger."))
            if set(self._FROZEN_ONCE_ACTIVE) & set(vals) and any(grant.state != "waiting" for grant in self):
                raise UserError(self.env._("A grant in the ledger keeps its wallet, kind and amount: "
                                           "adjust the wallet instead."))
        result = super().write(vals)
        if "expires_at" in vals:
            self.wallet_id._lock()
            self.wallet_id._expire_grants()
            self.wallet_id._check_credit()
        return result

    @api.ondelete(at_uninstall=False)
    def _unlink_if_not_in_ledger(self):
        if self.filtered("entry_ids"):
            raise UserError(self.env._("A grant in the ledger cannot be deleted."))

    def _activate(self):
        """Put the waiting grants' credit in their wallets' ledgers (a grant entry each); credit
        then pays usage no grant covered in periods not invoiced yet, and the wallets' notices
        and blocks follow the new balance."""
        grants = self.filtered(lambda grant: grant.state == "waiting")
        if not grants:
            return grants
        wallets = grants.wallet_id
        wallets._lock()
        grants.with_context(iot_wallet_ledger=True).write({"state": "active", "activated_at": fields.Datetime.now()})
        wallets._post_entries([
            {"wallet_id": grant.wallet_id.id, "grant_id": grant.id, "kind": "grant",
             "amount": to_decimal(grant.amount), "reason": grant.name}
            for grant in grants
        ])
        for wallet in wallets:
            topups = grants.filtered(lambda grant, wallet=wallet: grant.wallet_id == wallet and grant.kind == "topup")
            if topups:
                wallet.with_context(iot_wallet_ledger=True).last_topup_amount = sum(topups.mapped("amount"))
        wallets._expire_grants()
        wallets._settle_uncovered()
        wallets._check_credit()
        return grants
