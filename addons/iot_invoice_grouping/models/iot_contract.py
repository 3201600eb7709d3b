from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from odoo import fields, models
from odoo.addons.iot_contract.tools.billing_types import ScheduleInfo
from odoo.addons.iot_contract.tools.periods import period_bounds
from odoo.addons.iot_device.tools import to_decimal
from odoo.tools import format_date, formatLang

from .res_company import GROUPING_POLICIES


class GroupingInfo(ScheduleInfo, total=False):
    """What the grouping policies add to a schedule's ``ScheduleInfo``."""

    device_type: models.BaseModel  # iot_billing.device.type, with the device_type policy
    tag: models.BaseModel  # iot_billing.device.tag (the first), with the device_tag policy
    analytic: dict  # the item's analytic distribution, with the analytic and none policies


class IotContract(models.Model):
    _inherit = "iot.contract"

    invoice_grouping = fields.Selection(
        GROUPING_POLICIES,
        required=True,
        default=lambda self: self.env.company.iot_invoice_grouping,
        tracking=True,
        help="How the invoice lines of this contract are grouped. Each grouped line keeps the "
        "list of its schedules; the per-device detail is exportable from the invoice.",
    )

    def _iot_prepare_invoice_lines(self, parts):
        """Merge the parts of one invoice into a few lines, by the contract's policy.

        Every line's quantity x unit price equals the sum of its members to the
        cent: fixed fees are merged only with fees of the same unit price, and
        usage lines fall back to 1 x amount when no exact split exists.
        """
        self.ensure_one()
        info = self._iot_schedule_group_info(
            self.env["iot.invoicing.schedule"].browse({part["schedule_id"] for part in parts})
        )
        groups = defaultdict(list)
        for part in parts:
            groups[self._iot_group_key(part, info[part["schedule_id"]])].append(part)
        return [(self._iot_summary_line_vals(self._iot_members_summary(members, info)), members)
                for members in groups.values()]

    def _iot_billed_in_steps(self):
        # One line per device cannot be summed up in steps: such an invoice is built in one go.
        return self.invoice_grouping != "none"

    def _iot_line_keys(self, parts):
        self.ensure_one()
        info = self._iot_schedule_group_info(
            self.env["iot.invoicing.schedule"].browse({part["schedule_id"] for part in parts})
        )
        return [self._iot_group_key(part, info[part["schedule_id"]]) for part in parts]

    def _iot_members_summary(self, members, info):
        """The sums a grouped line is built from (see ``_iot_summary_line_vals``), of parts in memory."""
        schedule_ids = list(dict.fromkeys(part["schedule_id"] for part in members))
        periods = {(info[sid]["date_from"], info[sid]["date_to"]) for sid in schedule_ids}
        devices = {info[sid]["device_id"] for sid in schedule_ids if info[sid]["device_id"]}
        return {
            "first": members[0],
            "info": info[schedule_ids[0]],
            "count": len(members),
            "amount": sum((to_decimal(part["amount"]) for part in members), Decimal(0)),
            "quantity": sum((to_decimal(part["quantity"]) for part in members), Decimal(0)),
            "prices": {to_decimal(part["price_unit"]) for part in members},
            "date_from": min(period[0] for period in periods),
            "date_to": max(period[1] for period in periods),
            "period": next(iter(periods)) if len(periods) == 1 else None,
            "devices": len(devices) + sum(1 for sid in schedule_ids if not info[sid]["device_id"]),
        }

    def _iot_summary_line_vals(self, summary):
        """Invoice line values of a group of parts from its sums (``_iot_members_summary``, or
        the billing run's sums of a contract billed in steps): ``first``, the first member part;
        ``info``, its schedule's grouping facts; ``count``, ``amount``, ``quantity`` of the members;
        ``prices``, their distinct unit prices (two when they differ); ``date_from``, ``date_to``;
        ``period``, the only (date_from, date_to) of the members' schedules, or None;
        ``devices``, the devices (and plain subscriptions) billed."""
        first = summary["first"]
        if summary["count"] == 1:
            quantity, price_unit, name = first["quantity"], first["price_unit"], first["name"]
        else:
            quantity, price_unit = self._iot_exact_quantity_and_price(summary)
            name = self._iot_grouped_line_name(summary)
        vals = self._iot_prepare_line_vals(
            dict(first, quantity=quantity, price_unit=price_unit, name=name), summary["date_from"], summary["date_to"]
        )
        vals.update(
            iot_line_kind=first["kind"],
            iot_calculator_id=first.get("calculator_id") or False,
            iot_member_count=summary["count"],
        )
        analytic = summary["info"]["analytic"]
        if self.invoice_grouping in ("analytic", "none") and analytic:
            vals["analytic_distribution"] = analytic
        return vals

    def _iot_schedule_group_info(self, schedules):
        # Device types, tags and analytics, read in bulk only when the policy groups by them.
        info = super()._iot_schedule_group_info(schedules)
        policy = self.invoice_grouping
        if policy in ("device_type", "device_tag"):
            schedules.device_id.fetch(["device_type_id", "tag_ids"])
        with_analytic = policy in ("analytic", "none")
        if with_analytic:
            schedules.contract_item_id.fetch(["analytic_distribution"])
        Tag = self.env["iot_billing.device.tag"]
        DeviceType = self.env["iot_billing.device.type"]
        for schedule in schedules:
            device = schedule.device_id
            info[schedule.id].update(
                device_type=device.device_type_id if policy == "device_type" else DeviceType,
                tag=device.tag_ids[:1] if policy == "device_tag" else Tag,
                analytic=(schedule.contract_item_id.analytic_distribution or {}) if with_analytic else {},
            )
        return info

    def _iot_group_key(self, part, info):
        policy = self.invoice_grouping
        if policy == "none":
            return ("schedule", part["schedule_id"], part["kind"], part.get("calculator_id"))
        key = (part["kind"], part["product_id"], part.get("calculator_id") or False)
        if part["kind"] == "fixed":
            key += (to_decimal(part["price_unit"]),)
        if policy == "plan_period":
            key += (info["date_from"], info["date_to"])
        elif policy == "plan_metric":
            key += (part.get("metric_id") or False,)
        elif policy == "device_type":
            key += (info["device_type"].id,)
        elif policy == "device_tag":
            key += (info["tag"].id,)
        elif policy == "analytic":
            key += (tuple(sorted(info["analytic"].items())),)
        return key

    def _iot_exact_quantity_and_price(self, summary):
        """A quantity and unit price whose product is exactly the members' total."""
        currency = self.currency_id
        precision = self.env["decimal.precision"]
        price_step = Decimal(1).scaleb(-precision.precision_get("Product Price"))
        quantity_step = Decimal(1).scaleb(-precision.precision_get("Product Unit of Measure"))
        total = summary["amount"]
        if len(summary["prices"]) == 1:
            (price,) = summary["prices"]
            quantity = summary["quantity"]
            exact_quantity = quantity == quantity.quantize(quantity_step)
            rounded = to_decimal(currency.round(float(quantity * price))) if exact_quantity else None
            if exact_quantity and price == price.quantize(price_step) and rounded == total:
                return float(quantity), float(price)
        count = Decimal(summary["count"])
        average = (total / count).quantize(price_step, rounding=ROUND_HALF_UP)
        if average * count == total:
            return float(count), float(average)
        return 1.0, float(total)

    def _iot_grouped_line_name(self, summary):
        """'Premium Fleet Subscription — April 2022 — 10,000 devices'."""
        first, info = summary["first"], summary["info"]
        product = self.env["product.product"].browse(first["product_id"])
        words = []
        policy = self.invoice_grouping
        if policy == "device_type":
            words.append(info["device_type"].name or self.env._("No device type"))
        elif policy == "device_tag":
            words.append(info["tag"].name or self.env._("No tag"))
        words.append(product.name)
        if first["kind"] == "usage" and first.get("calculator_id"):
            words.append(self.env["iot.usage.calculator"].browse(first["calculator_id"]).name)
        words.append(self._iot_group_period_label(summary))
        count = summary["devices"]
        words.append(
            self.env._("%(count)s devices", count=formatLang(self.env, count, digits=0))
            if count != 1 else self.env._("1 device")
        )
        return " — ".join(word for word in words if word)

    def _iot_group_period_label(self, summary):
        if summary["period"]:
            period_from, period_to = summary["period"]
            info = summary["info"]
            start, end = period_bounds(period_from, info["billing_period"], info.get("cycle_anchor"))
            return self._iot_period_label(period_from, period_to, start, end)
        return "%s - %s" % (format_date(self.env, summary["date_from"]), format_date(self.env, summary["date_to"]))
