from odoo import api, fields, models
from odoo.addons.iot_device.models.iot_device import API_CONTEXT, TRANSITIONS
from odoo.addons.iot_device.tools import (
    ApiInputError,
    check_batch,
    id_or_reference,
    parse_date,
    parse_entries,
    require_entry,
    require_identifier,
    resolve_by_id_or_code,
)


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    # groups: the integration (API) user reads devices but no contract data.
    contract_id = fields.Many2one(
        "iot.contract",
        tracking=True,
        index="btree_not_null",
        check_company=True,
        domain="[('partner_id', '=?', partner_id), ('state', '!=', 'closed')]",
        groups="iot_device.group_iot_user",
        help="Contract the device is (or will be) activated on.",
    )
    plan_id = fields.Many2one(
        "product.product",
        string="Plan",
        tracking=True,
        check_company=True,
        domain="[('iot_is_plan', '=', True)]",
        groups="iot_device.group_iot_user",
    )
    contract_item_ids = fields.One2many(
        "iot.contract.item",
        "device_id",
        string="Contract Items",
        groups="iot_device.group_iot_user",
    )
    current_item_id = fields.Many2one(
        "iot.contract.item",
        string="Current Item",
        compute="_compute_current_item_id",
        groups="iot_device.group_iot_user",
    )
    schedule_count = fields.Integer(compute="_compute_schedule_count", groups="iot_device.group_iot_user")

    @api.depends("contract_item_ids.state")
    def _compute_current_item_id(self):
        for device in self:
            device.current_item_id = device.contract_item_ids.filtered(lambda item: item.state != "terminated")[:1]

    def _compute_schedule_count(self):
        counts = dict(
            self.env["iot.invoicing.schedule"]._read_group([("device_id", "in", self.ids)], ["device_id"], ["__count"])
        )
        for device in self:
            device.schedule_count = counts.get(device, 0)

    # ------------------------------------------------------------------
    # Life cycle: keep the contract items in step with the device
    # ------------------------------------------------------------------
    def _apply_transition(self, action, description=None):
        result = super()._apply_transition(action, description)
        items = self.sudo().contract_item_ids.filtered(lambda item: item.state != "terminated")
        # The API's date of the transition, else today.
        day = fields.Date.to_date(self.env.context.get("iot_transition_date") or fields.Date.context_today(self))
        if action == "suspend":
            items._iot_suspend(day)
        elif action == "resume":
            items._iot_resume(day)
        elif action == "terminate":
            items._iot_terminate(day)
        return result

    def action_open_activate_wizard(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_device_activate_wizard_action")
        action["context"] = {"active_model": "iot_billing.device", "active_ids": self.ids}
        return action

    def action_view_contract_items(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_contract_item_action")
        action["domain"] = [("device_id", "=", self.id)]
        action["context"] = {}
        return action

    def action_view_schedules(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_invoicing_schedule_action")
        action["domain"] = [("device_id", "=", self.id)]
        action["context"] = {}
        return action

    # ------------------------------------------------------------------
    # Activation (wizard and API share it)
    # ------------------------------------------------------------------
    def _iot_activation_error(self, contract, plan):
        """Why this device cannot be activated on contract/plan, or None."""
        self.ensure_one()
        if self.state == "draft":
            return self.env._("device is draft: confirm it before activating it")
        if self.state != "pending":
            return self.env._("device is already %(state)s", state=self.state)
        if not contract:
            return self.env._("no contract given and the device has none")
        if not plan:
            return self.env._("no plan given and the device has none")
        if contract.state == "closed":
            return self.env._("contract %(contract)s is closed", contract=contract.reference)
        if self.partner_id and self.partner_id.commercial_partner_id != (contract.partner_id.commercial_partner_id):
            return self.env._("contract %(contract)s belongs to another customer", contract=contract.reference)
        return None

    def _iot_activate(self, activations):
        """Create the contract items of ``activations`` in one create; devices become active.

        ``activations``: list of dicts ``device`` (record), ``contract``, ``plan``
        (records), ``date_start`` (date), ``duration_months`` (int or None).
        Callers have checked each one with ``_iot_activation_error``.
        """
        vals_list = []
        for activation in activations:
            vals = {
                "contract_id": activation["contract"].id,
                "device_id": activation["device"].id,
                "product_id": activation["plan"].id,
                "date_start": activation["date_start"],
            }
            if activation.get("duration_months"):
                vals["duration_months"] = activation["duration_months"]
            vals_list.append(vals)
        return self.env["iot.contract.item"].create(vals_list)

    # ------------------------------------------------------------------
    # External API
    # ------------------------------------------------------------------
    @api.model
    def _api_parse_activation(self, entry):
        require_entry(entry)
        parsed = {"identifier": require_identifier(entry)}
        for key in ("contract", "plan"):
            value = id_or_reference(entry, key)
            if value is not None:
                parsed[key] = value
        parsed["date_start"] = parse_date(entry, "date_start") or fields.Date.context_today(self)
        duration = entry.get("duration_months")
        if duration is not None:
            if not isinstance(duration, int) or isinstance(duration, bool) or not 0 < duration <= 1200:
                raise ApiInputError("'duration_months' must be a whole number of months (1-1200)")
            parsed["duration_months"] = duration
        return parsed

    @api.model
    def _api_resolve(self, model, keys, ref_field, extra_domain=()):
        """Map ids / references to records of the current company.

        sudo: the integration user reads no contract nor product; the records
        found only serve to create the items, nothing of them is returned.
        """
        Model = self.env[model].sudo()
        domain = [*Model._check_company_domain(self.env.company), *extra_domain]
        return resolve_by_id_or_code(Model, keys, ref_field, domain)

    @api.model
    def api_activate(self, activations):
        """Activate devices on contracts; one result per entry, in order.

        Entry: ``identifier``, ``contract`` (id or reference) and ``plan``
        (product id or default_code), both optional when the device knows
        them, ``date_start`` ("YYYY-MM-DD", today by default),
        ``duration_months`` (the plan's by default). Result:
        ``{"identifier", "contract_item_id", "state"}`` or ``{"identifier", "error"}``.
        """
        check_batch(activations)
        self.check_access("write")
        self = self.with_context(**API_CONTEXT)
        results, parsed = parse_entries(activations, self._api_parse_activation)
        devices = self._api_find_by_identifier({p["identifier"] for p in parsed.values()})
        contracts = self._api_resolve(
            "iot.contract", {p["contract"] for p in parsed.values() if "contract" in p}, "reference"
        )
        plans = self._api_resolve(
            "product.product",
            {p["plan"] for p in parsed.values() if "plan" in p},
            "default_code",
            [("type", "=", "service")],
        )
        activations_ok, indices, seen = [], [], set()
        for index, entry in parsed.items():
            error, activation = self._api_check_activation(entry, devices, contracts, plans, seen)
            if error:
                results[index] = {"identifier": entry["identifier"], "error": error}
            else:
                activations_ok.append(activation)
                indices.append(index)
        # sudo: access was checked above; the integration user creates no contract data itself.
        items = self.sudo()._iot_activate(activations_ok)
        for index, item in zip(indices, items, strict=True):
            results[index] = {
                "identifier": parsed[index]["identifier"],
                "contract_item_id": item.id,
                "state": item.device_id.state,
            }
        return results

    @api.model
    def _api_check_activation(self, entry, devices, contracts, plans, seen):
        identifier = entry["identifier"]
        device = devices.get(identifier)
        if not device:
            return "unknown device %r" % identifier, None
        if identifier in seen:
            return "device %r appears twice in the batch" % identifier, None
        device = device.sudo()
        contract, plan = device.contract_id, device.plan_id
        if "contract" in entry:
            contract = contracts.get(entry["contract"])
            if not contract:
                return "unknown contract %r" % entry["contract"], None
        if "plan" in entry:
            plan = plans.get(entry["plan"])
            if not plan:
                return "unknown plan %r" % entry["plan"], None
        error = device._iot_activation_error(contract, plan)
        if error:
            return error, None
        seen.add(identifier)
        return None, {
            "device": device,
            "contract": contract,
            "plan": plan,
            "date_start": entry["date_start"],
            "duration_months": entry.get("duration_months"),
        }

    @api.model
    def _api_transition(self, action, entries):
        """Shared by api_suspend / api_resume / api_terminate: ``[{identifier, date?}]``."""
        check_batch(entries)
        self.check_access("write")
        self = self.with_context(**API_CONTEXT)
        results, parsed = parse_entries(
            entries, lambda entry: (require_identifier(require_entry(entry)), parse_date(entry, "date"))
        )
        devices = self._api_find_by_identifier({identifier for identifier, _d in parsed.values()})
        held = self.browse([device.id for device in devices.values()])._iot_api_held_reasons() if (
            action == "resume") else {}
        batches = {}  # date -> (devices, indices): one transition call per date
        seen = set()
        for index, (identifier, date) in parsed.items():
            device = devices.get(identifier)
            if not device:
                error = "unknown device %r" % identifier
            elif device.id in held:
                error = held[device.id]
            elif identifier in seen:
                error = "device %r appears twice in the batch" % identifier
            elif device.state not in TRANSITIONS[action][0]:  # the states the action starts from
                error = "cannot %s a %s device" % (action, device.state)
            else:
                error = None
            if error:
                results[index] = {"identifier": identifier, "error": error}
                continue
            seen.add(identifier)
            group = batches.setdefault(date, [self.browse(), []])
            group[0] |= device
            group[1].append(index)
        for date, (batch, indices) in batches.items():
            batch._iot_api_apply(action, date)
            for index in indices:
                identifier = parsed[index][0]
                results[index] = {"identifier": identifier, "state": devices[identifier].state}
        return results

    def _iot_api_apply(self, action, date):
        description = {
            "suspend": self.env._("Device suspended"),
            "resume": self.env._("Device resumed"),
            "terminate": self.env._("Device terminated"),
        }[action]
        if date:
            description = self.env._("%(what)s as of %(date)s", what=description, date=date)
        # sudo: the integration user may not read nor write contract items
        # (terminate prorates their schedules); access to devices is checked.
        devices = self.sudo().with_context(iot_transition_date=date)
        devices._apply_transition(action, description)

    @api.model
    def _api_parse_plan_change(self, entry):
        require_entry(entry)
        plan = id_or_reference(entry, "plan")
        if plan is None:
            raise ApiInputError("'plan' must be an id or a reference")
        return {
            "identifier": require_identifier(entry),
            "plan": plan,
            "date": parse_date(entry, "date") or fields.Date.context_today(self),
        }

    @api.model
    def api_change_plan(self, entries):
        """Move devices' current items to another plan from a date.

        Entry: ``identifier``, ``plan`` (product id or default_code), ``date``
        ("YYYY-MM-DD", today by default: the first day on the new plan). Result:
        ``{"identifier", "contract_item_id" (the new item), "plan"}`` or
        ``{"identifier", "error"}``; one bad entry never fails the others.
        """
        check_batch(entries)
        self.check_access("write")
        self = self.with_context(**API_CONTEXT)
        results, parsed = parse_entries(entries, self._api_parse_plan_change)
        devices = self._api_find_by_identifier({p["identifier"] for p in parsed.values()})
        plans = self._api_resolve(
            "product.product", {p["plan"] for p in parsed.values()}, "default_code", [("iot_is_plan", "=", True)]
        )
        batches, seen = {}, set()  # (plan, date) -> [items, indices]
        for index, entry in parsed.items():
            identifier = entry["identifier"]
            device, plan = devices.get(identifier), plans.get(entry["plan"])
            # sudo: the integration user reads no contract item; access to devices is checked.
            item = device.sudo().current_item_id if device else None
            if not device:
                error = "unknown device %r" % identifier
            elif identifier in seen:
                error = "device %r appears twice in the batch" % identifier
            elif not plan:
                error = "unknown plan %r" % entry["plan"]
            elif not item:
                error = "device %r has no running contract item" % identifier
            else:
                error = item._iot_plan_change_error(plan, entry["date"])
            if error:
                results[index] = {"identifier": identifier, "error": error}
                continue
            seen.add(identifier)
            batch = batches.setdefault((plan, entry["date"]), [item.browse(), []])
            batch[0] |= item
            batch[1].append(index)
        for (plan, date), (items, indices) in batches.items():
            for index, new_item in zip(indices, items._iot_change_plan(plan, date), strict=True):
                results[index] = {
                    "identifier": parsed[index]["identifier"],
                    "contract_item_id": new_item.id,
                    "plan": plan.default_code or plan.id,
                }
        return results

    @api.model
    def api_suspend(self, entries):
        """Suspend active devices: ``[{identifier, date?}]`` -> ``[{identifier, state}|{identifier, error}]``."""
        return self._api_transition("suspend", entries)

    @api.model
    def api_resume(self, entries):
        """Resume suspended devices; same shape as ``api_suspend``."""
        return self._api_transition("resume", entries)

    @api.model
    def api_terminate(self, entries):
        """Terminate devices; ``date`` (default today) is the last day billed."""
        return self._api_transition("terminate", entries)
