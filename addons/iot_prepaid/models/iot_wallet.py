from odoo import api, fields, models

# The entry kinds that move the balance; reservations only hold part of it (reserved).
BALANCE_KINDS = ("grant", "debit", "expiry", "adjustment")


class IotWallet(models.Model):
    """The prepaid credit of one contract: its grants and its append-only ledger.

    ``balance`` and ``reserved`` are caches of the ledger, written only by the ledger methods
    (``_post_entries``) in the transaction that inserts the entries, under the wallet's row lock.
    """

    _name = "iot.wallet"
    _description = "IoT Prepaid Wallet"
    _order = "id desc"
    _check_company_auto = True

    contract_id = fields.Many2one(
        "iot.contract", required=True, index=True, ondelete="restrict", check_company=True,
    )
    name = fields.Char(related="contract_id.display_name", string="Contract Name")
    company_id = fields.Many2one(
        related="contract_id.company_id", store=True, index=True, precompute=True,
    )
    currency_id = fields.Many2one(related="contract_id.currency_id", store=True, precompute=True)
    partner_id = fields.Many2one(related="contract_id.partner_id", store=True, string="Customer")
    balance = fields.Monetary(
        readonly=True, copy=False,
        help="Sum of the ledger's grants, debits, expiries and adjustments (tax excluded).",
    )
    # Not stored: a hold writing the wallet row would conflict with ingestion, which locks and
    # updates it (rating); the open holds are summed by one indexed query.
    reserved = fields.Monetary(
        compute="_compute_reserved", help="Credit held by open reservations of the authorization API.",
    )
    available = fields.Monetary(compute="_compute_available", help="Balance less the reserved credit.")
    credit_after_payment = fields.Boolean(
        default=True,
        help="A top-up grants credit once its invoice is paid; otherwise as soon as it is posted.",
    )
    low_balance_amount = fields.Monetary(help="Notify the customer when the available credit falls to this amount.")
    low_balance_percent = fields.Float(
        digits=(5, 2), help="Notify the customer when the available credit falls to this share of the last top-up.",
    )
    last_topup_amount = fields.Monetary(readonly=True, copy=False)
    low_balance_notified = fields.Boolean(
        readonly=True, copy=False, help="The customer was told the credit is low; cleared by the next top-up.",
    )
    blocked_no_credit = fields.Boolean(
        readonly=True, copy=False, help="The prepaid devices are blocked: no credit left.",
    )
    burn_rate = fields.Monetary(
        compute="_compute_burn_rate", help="Average credit consumed per day over the last 7 days.",
    )
    grant_ids = fields.One2many("iot.wallet.grant", "wallet_id", string="Grants")
    entry_ids = fields.One2many("iot.wallet.entry", "wallet_id", string="Ledger")
    entry_count = fields.Integer(compute="_compute_entry_count")
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("contract_unique", "unique(contract_id)", "A contract has one wallet."),
    ]

    def _compute_reserved(self):
        rows = self.env["iot.wallet.reservation"]._read_group(
            [("wallet_id", "in", self.ids), ("state", "=", "open"), ("expires_at", ">", fields.Datetime.now())],
            ["wallet_id"], ["amount:sum"],
        )
        held = {wallet.id: amount for wallet, amount in rows}
        for wallet in self:
            wallet.reserved = held.get(wallet.id, 0.0)

    @api.depends("balance", "reserved")
    def _compute_available(self):
        for wallet in self:
            wallet.available = wallet.balance - wallet.reserved

    def _compute_burn_rate(self):
        since = fields.Datetime.subtract(fields.Datetime.now(), days=7)
        rows = self.env["iot.wallet.entry"]._read_group(
            [("wallet_id", "in", self.ids), ("kind", "=", "debit"), ("create_date", ">=", since)],
            ["wallet_id"], ["amount:sum"],
        )
        spent = {wallet.id: -amount for wallet, amount in rows}
        for wallet in self:
            wallet.burn_rate = wallet.currency_id.round(spent.get(wallet.id, 0.0) / 7)

    def _compute_entry_count(self):
        rows = self.env["iot.wallet.entry"]._read_group([("wallet_id", "in", self.ids)], ["wallet_id"], ["__count"])
        counts = {wallet.id: count for wallet, count in rows}
        for wallet in self:
            wallet.entry_count = counts.get(wallet.id, 0)
