import json
from decimal import Decimal

from odoo import Command, api, fields, models
from odoo.addons.iot_contract.tools import overlap_days, period_bounds, prorate
from odoo.addons.iot_device.tools import to_decimal

from ..tools import merge_settings


class IotContractItem(models.Model):
    _inherit = "iot.contract.item"

    iot_is_bundle = fields.Boolean(related="product_id.iot_is_bundle", string="Bundle")
    iot_option_ids = fields.One2many("iot.contract.item.option", "item_id", string="Service Options")
    iot_override_ids = fields.One2many(
        "iot.bundle.setting.value", "item_id", string="Setting Overrides", context={"default_role": "override"}
    )
    iot_preset_ids = fields.One2many("iot.contract.item.preset", "item_id", string="Presets")
    iot_fee_total = fields.Monetary(
        string="Bundle Fee", compute="_compute_iot_fee_total",
        help="The fee of one full billing period: the plan's price plus its options' prices.",
    )
    iot_current_preset_id = fields.Many2one(
        "iot.contract.item.preset", string="Current Preset", compute="_compute_iot_current_preset_id"
    )
    iot_resolved_settings_text = fields.Text(
        string="Resolved Settings", compute="_compute_iot_resolved_settings_text",
        help="Plan defaults, then the options in their order, then (while suspended) the plan's "
        "suspension settings, then the item's overrides: a later one wins.",
    )

    @api.depends("price_unit", "iot_option_ids.price_unit")
    def _compute_iot_fee_total(self):
        for item in self:
            item.iot_fee_total = item.price_unit + sum(item.iot_option_ids.mapped("price_unit"))

    @api.depends("iot_preset_ids.is_current")
    def _compute_iot_current_preset_id(self):
        for item in self:
            item.iot_current_preset_id = item.iot_preset_ids.filtered("is_current")[:1]

    @api.depends("state", "iot_option_ids", "iot_override_ids.value")
    def _compute_iot_resolved_settings_text(self):
        for item in self:
            item.iot_resolved_settings_text = (
                json.dumps(item._iot_resolved_settings(), indent=2) if item.iot_is_bundle else False
            )

    @api.model_create_multi
    def create(self, vals_list):
        plans = self.env["product.product"].browse({vals["product_id"] for vals in vals_list if vals.get("product_id")})
        defaults = {plan.id: plan.iot_bundle_default_option_ids for plan in plans if plan.iot_is_bundle}
        for vals in vals_list:
            if "iot_option_ids" not in vals and vals.get("product_id") in defaults:
                vals["iot_option_ids"] = [
                    Command.create({"product_id": option.id, "sequence": sequence})
                    for sequence, option in enumerate(defaults[vals["product_id"]], start=1)
                ]
        # The options and overrides created with the items wait for the items' first preset.
        items = super(IotContractItem, self.with_context(iot_bundle_item_create=True)).create(vals_list)
        items = items.with_env(self.env)
        items._iot_push_presets(self.env.context.get("iot_preset_reason", "activation"))
        return items

    # ------------------------------------------------------------------
    # Fee: the plan's price plus the options'
    # ------------------------------------------------------------------
    def _iot_fee_components(self):
        """[(product id, price of a full period)]: the plan's own price (left out when zero, a
        pure bundle), then the options in their order."""
        self.ensure_one()
        components = [] if self.currency_id.is_zero(self.price_unit) else [(self.product_id.id, self.price_unit)]
        components += [
            (option.product_id.id, option.price_unit)
            for option in self.iot_option_ids.sorted(lambda option: (option.sequence, option.id))
        ]
        return components

    def _iot_schedule_periods(self, periods_cache=None):
        """A bundle's period fee is the sum of its components' fees, each prorated and rounded on
        its own (the amounts of its invoice lines), suspended days left out as for any plan; the
        split is kept on the schedule (``iot_fee_split``), which bills it."""
        periods = super()._iot_schedule_periods(periods_cache)
        if not self.iot_is_bundle:
            return periods
        components = self._iot_fee_components()
        currency = self.currency_id
        days_off = self._iot_unbilled_intervals()
        digits = currency.decimal_places
        bundle_periods = []
        for vals in periods:
            if vals["part"] == "usage":
                bundle_periods.append(vals)
                continue
            date_from, date_to = vals["date_from"], vals["date_to"]
            period_start, period_end = period_bounds(date_from, self.billing_period, self.cycle_anchor)
            off = overlap_days(date_from, date_to, days_off)
            split = [
                (product_id, to_decimal(prorate(price, date_from, date_to, period_start, period_end, currency,
                                                days_off=off)).quantize(Decimal(1).scaleb(-digits)))
                for product_id, price in components
            ]
            split = [(product_id, amount) for product_id, amount in split if amount]
            bundle_periods.append(dict(
                vals,
                fixed_amount=float(sum((amount for _p, amount in split), Decimal(0))),
                iot_fee_split=json.dumps([[product_id, str(amount)] for product_id, amount in split]),
            ))
        return bundle_periods

    def _iot_options_changed(self):
        """Options added, removed or re-priced: the periods not invoiced yet are re-planned, the
        device gets a new preset."""
        if self.env.context.get("iot_bundle_item_create"):
            return
        self._sync_schedules()
        self._iot_push_presets("options")

    # ------------------------------------------------------------------
    # Presets
    # ------------------------------------------------------------------
    def _iot_resolved_settings(self):
        """The settings the item's device should run: the plan's defaults, then each option's
        (in the options' order), then the plan's settings while suspended (when it is), then the
        item's overrides; a later layer wins."""
        self.ensure_one()
        plan = self.product_id.product_tmpl_id
        layers = [plan.iot_setting_value_ids._as_pairs()]
        for option in self.iot_option_ids.sorted(lambda option: (option.sequence, option.id)):
            layers.append(option.product_id.product_tmpl_id.iot_setting_value_ids._as_pairs())
        if self.state == "suspended":
            layers.append(plan.iot_suspended_setting_value_ids._as_pairs())
        layers.append(self.iot_override_ids._as_pairs())
        return merge_settings(layers)

    def _iot_push_presets(self, reason):
        """A new preset version for each item whose resolved settings changed (every new item
        gets its first), sent to its device as a retained ``apply_preset`` command after commit.

        sudo: a preset follows from a change the caller was allowed to make (an activation by
        the integration user, an option added by a manager); versions and commands are the
        system's record of it.
        """
        if self.env.context.get("iot_bundle_item_create"):
            return
        items = self.filtered(lambda item: item.device_id and item.state != "terminated" and item.iot_is_bundle)
        if not items:
            return
        Preset = self.env["iot.contract.item.preset"].sudo()
        current = Preset.search([("device_id", "in", items.device_id.ids), ("is_current", "=", True)])
        current_by_device = {preset.device_id: preset for preset in current}
        new_versions = {}  # device -> (item, version, settings)
        for item in items:
            settings = item._iot_resolved_settings()
            last = current_by_device.get(item.device_id)
            if last and last.item_id == item and last.settings == settings:
                continue
            new_versions[item.device_id] = (item, (last.version if last else 0) + 1, settings)
        if not new_versions:
            return
        devices = self.env["iot_billing.device"].union(*new_versions)
        commands = self.env["iot_billing.device.command"].sudo()._enqueue(
            devices, "apply_preset",
            payload_by_device={
                device.id: {"version": version, "settings": settings}
                for device, (_item, version, settings) in new_versions.items()
            },
        )
        current.filtered(lambda preset: preset.device_id in devices).write({"is_current": False})
        Preset.create([
            {
                "item_id": new_versions[command.device_id][0].id,
                "device_id": command.device_id.id,
                "version": new_versions[command.device_id][1],
                "settings": new_versions[command.device_id][2],
                "reason": reason,
                "command_id": command.id,
            }
            for command in commands
        ])

    def _iot_suspend(self, date_from):
        result = super()._iot_suspend(date_from)
        self._iot_push_presets("suspension")
        return result

    def _iot_resume(self, date_resumed):
        result = super()._iot_resume(date_resumed)
        self._iot_push_presets("resumption")
        return result

    def _iot_change_plan(self, plan, date):
        # The new items' first preset says why it was sent; they take the new plan's default options.
        new_items = super(IotContractItem, self.with_context(iot_preset_reason="plan_change"))._iot_change_plan(
            plan, date
        )
        return new_items.with_env(self.env)
