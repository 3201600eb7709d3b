from odoo import api, fields, models
from odoo.addons.iot_device.tools import check_batch
from odoo.exceptions import UserError

# Events a platform may not post for a device blocked for no credit: they would record it as
# running again while it is not (the same types iot_dunning refuses for unpaid).
UNBLOCKING_EVENT_TYPES = ("activated", "resumed", "unblock", "unblocked")


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

    @api.model
    def _api_transition(self, action, entries):
        # A platform never resumes a device blocked for no credit: those entries are answered
        # with the reason, the others go through as before.
        check_batch(entries)
        blocked = self._iot_no_credit_identifiers(entries) if action == "resume" else set()
        if not blocked:
            return super()._api_transition(action, entries)
        results = [None] * len(entries)
        kept = []
        for index, entry in enumerate(entries):
            identifier = _identifier_of(entry)
            if identifier in blocked:
                results[index] = {"identifier": identifier, "error": _no_credit_reason(identifier)}
            else:
                kept.append(index)
        for index, result in zip(kept, super()._api_transition(action, [entries[i] for i in kept]), strict=True):
            results[index] = result
        return results

    @api.model
    def api_post_events(self, events, origin="api"):
        # Events that would show a device blocked for no credit as running again are refused.
        check_batch(events)
        unblocking = [
            (index, entry) for index, entry in enumerate(events)
            if isinstance(entry, dict) and isinstance(entry.get("event_type"), str)
            and entry["event_type"].strip().lower() in UNBLOCKING_EVENT_TYPES
        ]
        blocked = self._iot_no_credit_identifiers([entry for _index, entry in unblocking])
        refused = {index for index, entry in unblocking if _identifier_of(entry) in blocked}
        if not refused:
            return super().api_post_events(events, origin)
        kept = [index for index in range(len(events)) if index not in refused]
        answer = super().api_post_events([events[index] for index in kept], origin)
        rejected = [{"index": kept[item["index"]], "reason": item["reason"]} for item in answer["rejected"]] + [
            {"index": index, "reason": _no_credit_reason(_identifier_of(events[index]))} for index in refused
        ]
        rejected.sort(key=lambda item: item["index"])
        return dict(answer, rejected=rejected)

    @api.model
    def _iot_no_credit_identifiers(self, entries):
        """The identifiers among ``entries`` of devices suspended for no credit."""
        identifiers = {_identifier_of(entry) for entry in entries} - {False}
        if not identifiers:
            return set()
        devices = self._api_find_by_identifier(identifiers)
        return {identifier for identifier, device in devices.items()
                if device.state == "suspended" and device.iot_no_credit}


def _identifier_of(entry):
    if isinstance(entry, dict) and isinstance(entry.get("identifier"), str):
        return entry["identifier"].strip()
    return False


def _no_credit_reason(identifier):
    return "device %r is blocked for no credit: a top-up of its contract's prepaid credit releases it" % identifier
