from odoo import fields, models
from odoo.exceptions import UserError


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    # No groups: platforms read why a device is blocked, and its credit, with the device.
    iot_no_credit = fields.Boolean(
        string="Blocked: No Credit", readonly=True, copy=False, index="btree_not_null",
        help="Blocked because its contract's prepaid credit ran out; unblocked when a top-up brings it above zero.",
    )
    iot_credit_available = fields.Monetary(
        compute="_compute_iot_credit", string="Credit Available", currency_field="iot_credit_currency_id",
        help="The prepaid credit available to this device (its contract's wallet, less reservations).",
    )
    iot_credit_currency_id = fields.Many2one("res.currency", compute="_compute_iot_credit")

    def _compute_iot_credit(self):
        # sudo: the available credit is what platforms may know of the contract and its wallet.
        devices = self.sudo()
        wallets = self.env["iot.wallet"].sudo().search([("contract_id", "in", devices.contract_id.ids)])
        by_contract = {wallet.contract_id.id: wallet for wallet in wallets}
        contract_of = {device.id: device.contract_id.id for device in devices}
        for device in self:
            wallet = by_contract.get(contract_of[device.id])
            device.iot_credit_available = wallet.available if wallet else 0.0
            device.iot_credit_currency_id = wallet.currency_id if wallet else device.company_id.currency_id

    def _apply_transition(self, action, description=None):
        if action == "resume" and not self.env.context.get("iot_prepaid_release"):
            blocked = self.filtered("iot_no_credit")
            if blocked:
                raise UserError(self.env._(
                    "%(devices)s blocked for no credit: a top-up of the contract's prepaid credit releases them.",
                    devices=", ".join(blocked[:10].mapped("display_name")),
                ))
        result = super()._apply_transition(action, description)
        if action in ("resume", "terminate"):
            self.filtered("iot_no_credit").write({"iot_no_credit": False})
        return result

    def _iot_api_held_reasons(self):
        # A platform never releases a device blocked for no credit: a top-up does.
        reasons = super()._iot_api_held_reasons()
        for device in self.filtered(lambda device: device.state == "suspended" and device.iot_no_credit):
            reasons[device.id] = (
                "device %r is blocked for no credit: a top-up of its contract's prepaid credit releases it"
                % device.identifier
            )
        return reasons
