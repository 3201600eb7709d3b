import json
from decimal import Decimal

from odoo import fields, models
from odoo.addons.iot_device.tools import to_decimal
from odoo.tools import SQL


class IotInvoicingSchedule(models.Model):
    _inherit = "iot.invoicing.schedule"

    iot_fee_split = fields.Char(
        string="Bundle Fee Split", readonly=True,
        help="A bundle's fixed fee of this period by component, as JSON [[product id, amount], ...]: the "
        "plan's own price first (when not zero), then the options. The fixed fee is their sum.",
    )
    iot_component_ids = fields.One2many(
        "iot.invoicing.schedule.component", "schedule_id", string="Components Billed", readonly=True,
        help="A period of a plan billing one line per option: each component, its amount and its invoice line.",
    )

    def _iot_insert_schedules(self, vals_list):
        """The engine inserts schedules in one statement; the split of bundle periods follows in
        one more (matched on the item, the period's first day and its part, unique among new rows)."""
        schedules = super()._iot_insert_schedules(vals_list)
        splits = [vals for vals in vals_list if vals.get("iot_fee_split")]
        if splits:
            self.env.cr.execute(SQL(
                """UPDATE iot_invoicing_schedule schedule SET iot_fee_split = row.split
                     FROM unnest(%(items)s::int[], %(dates)s::date[], %(parts)s::varchar[], %(splits)s::varchar[])
                          AS row(item_id, date_from, part, split)
                    WHERE schedule.id = ANY(%(ids)s) AND schedule.contract_item_id = row.item_id
                      AND schedule.date_from = row.date_from AND schedule.part = row.part""",
                items=[vals["contract_item_id"] for vals in splits],
                dates=[vals["date_from"] for vals in splits],
                parts=[vals.get("part", "all") for vals in splits],
                splits=[vals["iot_fee_split"] for vals in splits],
                ids=schedules.ids,
            ))
            schedules.invalidate_recordset(["iot_fee_split"])
        return schedules

    def _iot_invoice_line_parts(self):
        """A bundle's fixed fee becomes one part per component (each option its own line, the plan's
        base first) or one part of the plan whose label lists the options (*One Bundle Line*)."""
        parts = super()._iot_invoice_line_parts()
        fixed_ids = [part["schedule_id"] for part in parts if part["kind"] == "fixed"]
        bundles = self.browse(fixed_ids).filtered("iot_fee_split")
        if not bundles:
            return parts
        bundles.fetch(["iot_fee_split", "contract_item_id", "product_id"])
        split_by_schedule = {schedule.id: schedule for schedule in bundles}
        names = {}

        def product_name(product_id):
            if product_id not in names:
                names[product_id] = self.env["product.product"].browse(product_id).name
            return names[product_id]

        bundle_parts = []
        for part in parts:
            schedule = split_by_schedule.get(part["schedule_id"]) if part["kind"] == "fixed" else None
            if not schedule:
                bundle_parts.append(part)
                continue
            split = json.loads(schedule.iot_fee_split)
            plan = schedule.product_id
            # The engine's label is "<item> — <plan> — <period>": the component takes the plan's place.
            prefix = "%s — %s" % (schedule.contract_item_id.name, plan.name)
            rest = part["name"][len(prefix):] if part["name"].startswith(prefix) else " — " + part["name"]
            if plan.iot_bundle_lines == "bundle":
                options = [product_name(product_id) for product_id, _amount in split if product_id != plan.id]
                label = "%s (%s)" % (plan.name, ", ".join(options)) if options else plan.name
                bundle_parts.append(dict(part, name="%s — %s%s" % (schedule.contract_item_id.name, label, rest)))
                continue
            for product_id, amount in split:
                bundle_parts.append(dict(
                    part,
                    product_id=product_id,
                    name="%s — %s%s" % (schedule.contract_item_id.name, product_name(product_id), rest),
                    price_unit=float(amount),
                    amount=float(amount),
                ))
        return bundle_parts

    def _iot_link_invoice_lines(self, line_parts):
        """A bundle schedule billed on one line per option records each component on the line that
        billed it (``iot_component_ids``: the detail and a termination credit read them), and is
        linked (``fixed_line_id``) to the line of its first component, which marks it billed.

        A part carries its schedule and kind only (parts billed in steps are staged so): a
        schedule bills each component's product once, so the line's product names the component.
        """
        bundles = self.filtered(
            lambda schedule: schedule.iot_fee_split and schedule.product_id.iot_bundle_lines == "options"
        )
        if not bundles:
            return super()._iot_link_invoice_lines(line_parts)
        splits = {schedule.id: json.loads(schedule.iot_fee_split) for schedule in bundles}
        lines = self.env["account.move.line"].browse([line_id for line_id, _parts in line_parts])
        lines.fetch(["product_id", "company_id"])
        line_by_id = {line.id: line for line in lines}
        kept, components = [], []
        for line_id, parts in line_parts:
            line = line_by_id[line_id]
            members = []
            for part in parts:
                split = splits.get(part["schedule_id"]) if part["kind"] == "fixed" else None
                if split is None:
                    members.append(part)
                    continue
                position, amount = next(
                    (position, amount) for position, (product_id, amount) in enumerate(split)
                    if product_id == line.product_id.id
                )
                components.append(
                    (part["schedule_id"], position, line_id, line.product_id.id, line.company_id.id, amount)
                )
                if split[0][0] == line.product_id.id:
                    members.append(part)
            if members:
                kept.append((line_id, members))
        if components:
            components.sort()  # ids in the components' order: the detail and the credit follow it
            # One statement: a fleet's run bills devices x options components.
            self.env.cr.execute(SQL(
                """INSERT INTO iot_invoicing_schedule_component
                          (schedule_id, move_line_id, product_id, company_id, amount,
                           create_uid, create_date, write_uid, write_date)
                   SELECT row.schedule_id, row.line_id, row.product_id, row.company_id, row.amount,
                          %(uid)s, now() at time zone 'UTC', %(uid)s, now() at time zone 'UTC'
                     FROM unnest(%(schedules)s::int[], %(lines)s::int[], %(products)s::int[],
                                 %(companies)s::int[], %(amounts)s::numeric[]) WITH ORDINALITY
                          AS row(schedule_id, line_id, product_id, company_id, amount, position)
                    ORDER BY row.position""",
                uid=self.env.uid,
                schedules=[component[0] for component in components],
                lines=[component[2] for component in components],
                products=[component[3] for component in components],
                companies=[component[4] for component in components],
                amounts=[component[5] for component in components],
            ))
            self.invalidate_model(["iot_component_ids"])
        return super()._iot_link_invoice_lines(kept)

    def _iot_credit_parts(self, kept_vals):
        """Each component billed is credited on its own line (its product, taxes and account):
        what it billed less its amount for the days kept."""
        self.ensure_one()
        if not self.iot_component_ids:
            return super()._iot_credit_parts(kept_vals)
        kept_split = json.loads(kept_vals.get("iot_fee_split") or "[]") if kept_vals else []
        kept = {product_id: to_decimal(amount) for product_id, amount in kept_split}
        return [
            (
                component.move_line_id,
                self.currency_id.round(
                    float(to_decimal(component.amount) - kept.get(component.product_id.id, Decimal(0)))
                ),
            )
            for component in self.iot_component_ids.sorted("id")
        ]
