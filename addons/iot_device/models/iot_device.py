from psycopg2.errors import UniqueViolation

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..tools import (
    ApiInputError,
    check_batch,
    optional_payload,
    parse_entries,
    parse_utc_timestamp,
    require_entry,
    require_identifier,
    require_text,
    resolve_by_id_or_code,
)

# action -> (states it may start from, state it leads to, event code it logs)
TRANSITIONS = {
    "confirm": (("draft",), "pending", "confirmed"),
    "activate": (("pending",), "active", "activated"),
    "suspend": (("active",), "suspended", "suspended"),
    "resume": (("suspended",), "active", "resumed"),
    "terminate": (("pending", "active", "suspended"), "terminated", "terminated"),
}

# Bulk API writes skip chatter tracking and follower subscription: a platform
# registering 10,000 devices must not write 10,000 chatter messages.
API_CONTEXT = {
    "iot_event_origin": "api",
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
}


# Events a platform may not post for a device held by billing (``_iot_api_held_reasons``).
UNBLOCKING_EVENT_TYPES = ("activated", "resumed", "unblock", "unblocked")


class IotDevice(models.Model):
    _name = "iot_billing.device"
    _description = "IoT Device"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True, index="trigram")
    identifier = fields.Char(
        required=True,
        index=True,
        copy=False,
        tracking=True,
        help="Serial number, IMEI or DevEUI: how device platforms name the device in the API. "
        "Unique per company.",
    )
    device_type_id = fields.Many2one("iot_billing.device.type", tracking=True, index=True)
    partner_id = fields.Many2one(
        "res.partner", string="Customer", tracking=True, index=True, check_company=True
    )
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("pending", "Pending"),
            ("active", "Active"),
            ("suspended", "Suspended"),
            ("terminated", "Terminated"),
        ],
        required=True,
        default="draft",
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
        group_expand="_group_expand_states",
    )
    event_ids = fields.One2many("iot_billing.device.event", "device_id", string="Events")
    event_count = fields.Integer(compute="_compute_event_count")
    tag_ids = fields.Many2many("iot_billing.device.tag", string="Tags")
    notes = fields.Html()
    active = fields.Boolean(default=True)
    color = fields.Integer()

    _sql_constraints = [
        (
            "identifier_company_unique",
            "unique(company_id, identifier)",
            "Another device of this company already has this identifier.",
        ),
    ]

    def _group_expand_states(self, states, domain):
        return [key for key, _label in self._fields["state"].selection]

    @api.depends("event_ids")
    def _compute_event_count(self):
        counts = dict(
            self.env["iot_billing.device.event"]._read_group(
                [("device_id", "in", self.ids)], ["device_id"], ["__count"]
            )
        )
        for device in self:
            device.event_count = counts.get(device, 0)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("identifier"):
                vals["identifier"] = vals["identifier"].strip()
            if not vals.get("name") and vals.get("identifier"):
                vals["name"] = vals["identifier"]
        devices = super().create(vals_list)
        devices._log_events("created", description=self.env._("Device created"))
        return devices

    def write(self, vals):
        if vals.get("identifier"):
            vals["identifier"] = vals["identifier"].strip()
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_only_draft(self):
        if any(device.state != "draft" for device in self):
            raise UserError(
                self.env._("Only draft devices can be deleted; terminate or archive the others.")
            )

    # ------------------------------------------------------------------
    # Life cycle
    # ------------------------------------------------------------------
    def _event_origin(self):
        return self.env.context.get("iot_event_origin", "ui")

    def _log_events(self, event_type, description=None):
        """Log one event per device, in one statement: a bulk activation logs thousands."""
        if not self:
            return 0
        now = fields.Datetime.now()
        return self._insert_events(
            [
                {
                    "device_id": device.id,
                    "company_id": device.company_id.id,
                    "event_type": event_type,
                    "date": now,
                    "description": description,
                }
                for device in self
            ],
            self._event_origin(),
        )

    def _apply_transition(self, action, description=None):
        allowed_from, target_state, event_type = TRANSITIONS[action]
        refused = self.filtered(lambda device: device.state not in allowed_from)
        if refused:
            labels = dict(self._fields["state"]._description_selection(self.env))
            raise UserError(
                self.env._(
                    "Cannot %(action)s %(devices)s: allowed only from %(allowed)s.",
                    action=action,
                    devices=", ".join(
                        "%s (%s)" % (device.display_name, labels[device.state])
                        for device in refused[:10]
                    ),
                    allowed=", ".join(labels[state] for state in allowed_from),
                )
            )
        self.write({"state": target_state})
        self._log_events(event_type, description=description)
        return True

    def action_confirm(self):
        return self._apply_transition("confirm", self.env._("Device confirmed"))

    def action_activate(self):
        return self._apply_transition("activate", self.env._("Device activated"))

    def action_suspend(self):
        return self._apply_transition("suspend", self.env._("Device suspended"))

    def action_resume(self):
        return self._apply_transition("resume", self.env._("Device resumed"))

    def action_terminate(self):
        return self._apply_transition("terminate", self.env._("Device terminated"))

    def action_view_events(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_device.iot_device_event_action")
        action["domain"] = [("device_id", "=", self.id)]
        action["context"] = {"default_device_id": self.id}
        return action

    # ------------------------------------------------------------------
    # External API (execute_kw over XML-RPC / JSON-RPC)
    # ------------------------------------------------------------------
    @api.model
    def _api_find_by_identifier(self, identifiers):
        """Devices of the current company by identifier, archived ones included."""
        devices = self.with_context(active_test=False).search_fetch(
            [("company_id", "=", self.env.company.id), ("identifier", "in", list(identifiers))],
            ["identifier", "company_id", "state"],
        )
        return {device.identifier: device for device in devices}

    @api.model
    def _api_resolve_partners(self, keys):
        """Map partner ids / refs to partner ids.

        sudo: the integration user may not read partners; only ids leave this
        method, never partner data. Partners of other companies stay invisible.
        """
        partners = resolve_by_id_or_code(
            self.env["res.partner"].sudo(),
            keys,
            "ref",
            [("company_id", "in", [False, self.env.company.id])],
            order=None,  # a ref two partners share: the first as the partner list shows them
        )
        return {key: partner.id for key, partner in partners.items()}

    @api.model
    def _api_parse_registration(self, entry):
        require_entry(entry)
        parsed = {"identifier": require_identifier(entry)}
        name = require_text(entry, "name", 256, required=False)
        if name:
            parsed["name"] = name
        device_type = require_text(entry, "device_type", 64, required=False)
        if device_type:
            parsed["device_type"] = device_type
        partner = entry.get("partner")
        if partner not in (None, "", False):
            if isinstance(partner, str):
                partner = partner.strip()
            elif not isinstance(partner, int) or isinstance(partner, bool):
                raise ApiInputError("'partner' must be a partner id or reference")
            parsed["partner"] = partner
        return parsed

    @api.model
    def api_register(self, devices):
        """Register or update devices by identifier; one result per entry, in order.

        New devices start in ``pending``. Sending an identifier again updates
        the fields given and never creates a second device.
        """
        check_batch(devices)
        self.check_access("create")
        self = self.with_context(**API_CONTEXT)
        results, parsed = parse_entries(devices, self._api_parse_registration)

        type_codes = {p["device_type"] for p in parsed.values() if "device_type" in p}
        types_by_code = {
            device_type.code: device_type.id
            for device_type in self.env["iot_billing.device.type"].search([("code", "in", list(type_codes))])
        }
        partners_by_key = self._api_resolve_partners(
            {p["partner"] for p in parsed.values() if "partner" in p}
        )

        # identifier -> (vals to apply, indices asking for it): later entries
        # for the same identifier refine the earlier ones.
        wanted = {}
        for index, entry in parsed.items():
            vals = {}
            if "name" in entry:
                vals["name"] = entry["name"]
            if "device_type" in entry:
                if entry["device_type"] not in types_by_code:
                    results[index] = {
                        "identifier": entry["identifier"],
                        "error": "unknown device type %r" % entry["device_type"],
                    }
                    continue
                vals["device_type_id"] = types_by_code[entry["device_type"]]
            if "partner" in entry:
                if entry["partner"] not in partners_by_key:
                    results[index] = {
                        "identifier": entry["identifier"],
                        "error": "unknown partner %r" % entry["partner"],
                    }
                    continue
                vals["partner_id"] = partners_by_key[entry["partner"]]
            merged, indices = wanted.setdefault(entry["identifier"], ({}, []))
            merged.update(vals)
            indices.append(index)

        existing = self._api_find_by_identifier(wanted)
        to_create = [
            dict(vals, identifier=identifier, state="pending", company_id=self.env.company.id)
            for identifier, (vals, _indices) in wanted.items()
            if identifier not in existing
        ]
        created = self._api_create_new(to_create)
        created_ids = set(created.ids)
        devices_by_identifier = dict(existing)
        devices_by_identifier.update({device.identifier: device for device in created})

        # One write per distinct set of values rather than one per device.
        updates = {}
        for identifier, (vals, _indices) in wanted.items():
            if identifier in existing and vals:
                key = tuple(sorted(vals.items()))
                updates.setdefault(key, self.browse())
                updates[key] |= existing[identifier]
        for key, group in updates.items():
            group.write(dict(key))

        for identifier, (_vals, indices) in wanted.items():
            device = devices_by_identifier[identifier]
            for position, index in enumerate(indices):
                results[index] = {
                    "identifier": identifier,
                    "id": device.id,
                    "state": device.state,
                    "created": device.id in created_ids and position == 0,
                }
        return results

    @api.model
    def _api_create_new(self, vals_list):
        """Create devices this transaction did not see; a concurrent registration of the same
        identifier makes the whole call retry instead of failing.

        Odoo's transactions read a snapshot taken at their start (REPEATABLE READ): a device
        another call committed since then is invisible here, and inserting it again violates
        the unique identifier. That is a race, not bad input: turn it into a serialization
        failure, which Odoo's RPC layer retries with a fresh snapshot, where the identifier is
        found and answered as already registered.
        """
        try:
            with self.env.cr.savepoint():
                return self.create(vals_list)
        except UniqueViolation as error:
            if error.diag.constraint_name != "%s_identifier_company_unique" % self._table:
                raise
        self.env.cr.execute("""
            DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure',
                MESSAGE = 'a device identifier was registered by a concurrent call'; END $$""")
        raise AssertionError("unreachable: the statement above raises")

    @api.model
    def _api_parse_event(self, entry):
        require_entry(entry)
        return {
            "identifier": require_identifier(entry),
            "event_type": require_text(entry, "event_type", 64),
            "date": parse_utc_timestamp(entry.get("timestamp")),
            "message_id": require_text(entry, "message_id", 255, required=False),
            "payload": optional_payload(entry),
        }

    @api.model
    def api_post_events(self, events, origin="api"):
        """Store device events; an event re-sent with the same message_id counts once.

        Returns ``{"accepted": n, "duplicates": n, "rejected": [{"index", "reason"}]}``.
        """
        check_batch(events)
        if origin not in ("api", "mqtt"):
            raise ApiInputError("origin must be 'api' or 'mqtt'")
        Event = self.env["iot_billing.device.event"]
        Event.check_access("create")
        rejected = []
        parsed = []
        for index, entry in enumerate(events):
            try:
                parsed.append((index, self._api_parse_event(entry)))
            except ApiInputError as error:
                rejected.append({"index": index, "reason": str(error)})

        devices = self._api_find_by_identifier({event["identifier"] for _i, event in parsed})
        held = self.browse([device.id for device in devices.values()])._iot_api_held_reasons()
        rows = []
        for index, event in parsed:
            device = devices.get(event["identifier"])
            if not device:
                rejected.append(
                    {"index": index, "reason": "unknown device %r" % event["identifier"]}
                )
                continue
            if device.id in held and event["event_type"].strip().lower() in UNBLOCKING_EVENT_TYPES:
                # An event showing such a device running again would contradict why it is held.
                rejected.append({"index": index, "reason": held[device.id]})
                continue
            rows.append(dict(event, device_id=device.id, company_id=device.company_id.id))
        accepted = self._insert_events(rows, origin) if rows else 0
        rejected.sort(key=lambda item: item["index"])
        return {"accepted": accepted, "duplicates": len(rows) - accepted, "rejected": rejected}

    def _iot_api_held_reasons(self):
        """{device id: reason} of these devices that a platform may not release (resume, or post an
        event showing them running again): base none; iot_dunning holds the devices blocked for
        unpaid invoices, iot_prepaid those blocked for no credit."""
        return {}

    @api.model
    def _insert_events(self, rows, origin):
        """Insert events in one statement; (device, message_id) pairs already stored are skipped.

        ``rows``: dicts with device_id, company_id, event_type, date and optionally
        message_id, payload (JSON text), description. Raw SQL because ON CONFLICT
        DO NOTHING is what makes re-sent and concurrent batches safe, and the ORM
        creates only a few thousand rows a second; callers check access.
        """
        Event = self.env["iot_billing.device.event"]
        Event.flush_model()
        # The transaction's time, as the ORM stamps create_date: billing compares the two.
        now = self.env.cr.now()
        self.env.cr.execute(
            """
            INSERT INTO iot_billing_device_event (
                device_id, company_id, event_type, date, message_id, payload, description,
                origin, user_id, create_uid, write_uid, create_date, write_date)
            SELECT row.device_id, row.company_id, row.event_type, row.date, row.message_id,
                   row.payload::jsonb, row.description,
                   %(origin)s, %(uid)s, %(uid)s, %(uid)s, %(now)s, %(now)s
              FROM unnest(%(device_ids)s::int[], %(company_ids)s::int[], %(types)s::varchar[],
                          %(dates)s::timestamp[], %(message_ids)s::varchar[], %(payloads)s::text[],
                          %(descriptions)s::varchar[])
                   AS row(device_id, company_id, event_type, date, message_id, payload, description)
            ON CONFLICT (device_id, message_id) DO NOTHING
            """,
            {
                "origin": origin,
                "uid": self.env.uid,
                "now": now,
                **{
                    key: [row.get(field) for row in rows]
                    for key, field in (
                        ("device_ids", "device_id"),
                        ("company_ids", "company_id"),
                        ("types", "event_type"),
                        ("dates", "date"),
                        ("message_ids", "message_id"),
                        ("payloads", "payload"),
                        ("descriptions", "description"),
                    )
                },
            },
        )
        inserted = self.env.cr.rowcount
        Event.invalidate_model()
        self.invalidate_model(["event_ids", "event_count"])
        return inserted
