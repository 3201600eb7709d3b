from odoo import api, fields, models
from odoo.addons.iot_device.tools import check_batch
from odoo.exceptions import UserError

# Events a platform may not post for a device blocked for unpaid: they would
# record it as running again while it is not.
UNBLOCKING_EVENT_TYPES = ("activated", "resumed", "unblock", "unblocked")


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    # No groups: platforms read the blocked state and its reason with the device.
    iot_suspension_reason = fields.Selection(
        [("manual", "Manual"), ("unpaid", "Unpaid invoices")],
        string="Suspension Reason",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Manual: suspended by a user or a platform; only they resume it. "
        "Unpaid: blocked by dunning; released when the overdue invoices are paid.",
    )
    iot_suspended_since = fields.Datetime(string="Suspended Since", readonly=True, copy=False)
    iot_never_block = fields.Boolean(
        string="Never Block",
        help="Dunning never suspends this device (emergency lighting, medical devices...).",
    )

    def _apply_transition(self, action, description=None):
        if action == "resume" and not self.env.context.get("iot_dunning_release"):
            unpaid = self.filtered(lambda device: device.iot_suspension_reason == "unpaid")
            if unpaid:
                raise UserError(
                    self.env._(
                        "%(devices)s blocked for unpaid invoices: paying the invoices releases them "
                        "(or Release on the device, for the Billing group).",
                        devices=", ".join(unpaid[:10].mapped("display_name")),
                    )
                )
        result = super()._apply_transition(action, description)
        if action == "suspend":
            self.write(
                {
                    "iot_suspension_reason": self.env.context.get("iot_suspension_reason", "manual"),
                    "iot_suspended_since": fields.Datetime.now(),
                }
            )
        elif action in ("resume", "terminate"):
            self.write({"iot_suspension_reason": False, "iot_suspended_since": False})
        return result

    def action_iot_dunning_release(self):
        """Billing group: lift a block for unpaid by hand (e.g. a payment promise)."""
        if not self.env.user.has_group("iot_contract.group_iot_billing"):
            raise UserError(self.env._("Only the IoT Billing group may release devices blocked for unpaid."))
        devices = self.filtered(lambda device: device.iot_suspension_reason == "unpaid")
        devices.with_context(iot_dunning_release=True)._apply_transition(
            "resume", self.env._("Released by %(user)s", user=self.env.user.name)
        )
        return True

    @api.model
    def _api_transition(self, action, entries):
        # A platform never resumes a device blocked for unpaid: those entries are
        # answered with an error, the others go through as before.
        check_batch(entries)
        if action != "resume":
            return super()._api_transition(action, entries)
        blocked = self._iot_unpaid_identifiers(entries)
        if not blocked:
            return super()._api_transition(action, entries)
        results = [None] * len(entries)
        kept = []
        for index, entry in enumerate(entries):
            identifier = _identifier_of(entry)
            if identifier in blocked:
                results[index] = {
                    "identifier": identifier,
                    "error": "device %r is blocked for unpaid invoices" % identifier,
                }
            else:
                kept.append(index)
        for index, result in zip(kept, super()._api_transition(action, [entries[i] for i in kept]), strict=True):
            results[index] = result
        return results

    @api.model
    def api_post_events(self, events, origin="api"):
        # Events that would show a device blocked for unpaid as running again are refused.
        check_batch(events)
        unblocking = [
            (index, entry)
            for index, entry in enumerate(events)
            if isinstance(entry, dict)
            and isinstance(entry.get("event_type"), str)
            and entry["event_type"].strip().lower() in UNBLOCKING_EVENT_TYPES
        ]
        blocked = self._iot_unpaid_identifiers([entry for _index, entry in unblocking])
        refused = {index for index, entry in unblocking if _identifier_of(entry) in blocked}
        if not refused:
            return super().api_post_events(events, origin)
        kept = [index for index in range(len(events)) if index not in refused]
        answer = super().api_post_events([events[index] for index in kept], origin)
        rejected = [{"index": kept[item["index"]], "reason": item["reason"]} for item in answer["rejected"]] + [
            {"index": index, "reason": "device %r is blocked for unpaid invoices" % _identifier_of(events[index])}
            for index in refused
        ]
        rejected.sort(key=lambda item: item["index"])
        return dict(answer, rejected=rejected)

    @api.model
    def _iot_unpaid_identifiers(self, entries):
        identifiers = {_identifier_of(entry) for entry in entries} - {False}
        if not identifiers:
            return set()
        devices = self._api_find_by_identifier(identifiers)
        return {
            identifier
            for identifier, device in devices.items()
            if device.state == "suspended" and device.iot_suspension_reason == "unpaid"
        }


def _identifier_of(entry):
    if isinstance(entry, dict) and isinstance(entry.get("identifier"), str):
        return entry["identifier"].strip()
    return False
