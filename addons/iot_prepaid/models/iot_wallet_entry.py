from odoo import fields, models

ENTRY_KINDS = [
    ("grant", "Grant"),
    ("debit", "Debit"),
    ("expiry", "Expiry"),
    ("adjustment", "Adjustment"),
    ("reserve", "Reserve"),
    ("release", "Release"),
]


class IotWalletEntry(models.Model):
    """One line of a wallet's ledger, append-only: inserted only by the ledger methods of
    iot.wallet, never written nor deleted (a database trigger refuses it, sudo included).

    ``amount`` is signed: grant +, debit -, expiry -, adjustment + or -. Reserve (-) and
    release (+) move the reserved credit, not the balance.
    """

    _name = "iot.wallet.entry"
    _description = "IoT Prepaid Ledger Entry"
    _order = "id desc"

    wallet_id = fields.Many2one("iot.wallet", required=True, index=True, ondelete="restrict", readonly=True)
    company_id = fields.Many2one("res.company", required=True, index=True, readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    grant_id = fields.Many2one("iot.wallet.grant", index="btree_not_null", ondelete="restrict", readonly=True)
    kind = fields.Selection(ENTRY_KINDS, required=True, readonly=True)
    amount = fields.Monetary(readonly=True)
    device_id = fields.Many2one("iot_billing.device", index="btree_not_null", ondelete="restrict", readonly=True)
    calculator_id = fields.Many2one("iot.usage.calculator", ondelete="restrict", readonly=True)
    schedule_id = fields.Many2one(
        "iot.invoicing.schedule", string="Period", index="btree_not_null", ondelete="restrict", readonly=True,
        help="The billing period this debit rates.",
    )
    reservation_id = fields.Many2one(
        "iot.wallet.reservation", index="btree_not_null", ondelete="restrict", readonly=True,
    )
    reason = fields.Char(readonly=True)
