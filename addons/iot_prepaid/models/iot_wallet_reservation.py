from odoo import fields, models

RESERVATION_STATES = [
    ("open", "Open"),
    ("confirmed", "Confirmed"),
    ("released", "Released"),
    ("expired", "Expired"),
]


class IotWalletReservation(models.Model):
    """Credit held for an authorized use (POST /iot/authorize), until confirmed, released or
    expired. Holds never take money: the confirmed quantity is rated as a reading."""

    _name = "iot.wallet.reservation"
    _description = "IoT Prepaid Credit Reservation"
    _order = "id desc"

    wallet_id = fields.Many2one("iot.wallet", required=True, index=True, ondelete="restrict")
    company_id = fields.Many2one(related="wallet_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="wallet_id.currency_id", store=True)
    device_id = fields.Many2one("iot_billing.device", required=True, ondelete="restrict")
    metric_id = fields.Many2one("iot.usage.metric", required=True, ondelete="restrict")
    quantity = fields.Float(digits=(20, 6))
    amount = fields.Monetary()
    state = fields.Selection(RESERVATION_STATES, required=True, default="open", index=True)
    expires_at = fields.Datetime(required=True, index=True)
