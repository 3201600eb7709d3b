from odoo import api, fields, models
from odoo.exceptions import UserError

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

    def init(self):
        # Append-only for everyone, sudo and SQL included: only inserts reach the table.
        self.env.cr.execute(
            """
            CREATE OR REPLACE FUNCTION iot_wallet_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'iot_wallet_entry is append-only: % refused', TG_OP;
            END $$;
            DROP TRIGGER IF EXISTS iot_wallet_entry_append_only ON iot_wallet_entry;
            CREATE TRIGGER iot_wallet_entry_append_only BEFORE UPDATE OR DELETE ON iot_wallet_entry
                FOR EACH ROW EXECUTE FUNCTION iot_wallet_entry_append_only();
            """
        )

    @api.model_create_multi
    def create(self, vals_list):
        raise UserError(self.env._(
            "Ledger entries are written by the wallet (grants, rating, expiry, adjustments), not by hand."))

    def write(self, vals):
        raise UserError(self.env._("Ledger entries are append-only: they cannot be changed."))

    def unlink(self):
        raise UserError(self.env._("Ledger entries are append-only: they cannot be deleted."))
