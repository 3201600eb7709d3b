import json

from odoo import fields, models
from odoo.tools import SQL


class IotInvoicingSchedule(models.Model):
    _inherit = "iot.invoicing.schedule"

    iot_fee_split = fields.Char(
        string="Bundle Fee Split", readonly=True,
        help="A bundle's fixed fee of this period by component, as JSON [[product id, amount], ...]: the "
        "plan's own price first (when not zero), then the options. The fixed fee is their sum.",
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
        """A bundle schedule billed on one line per option is linked (``fixed_line_id``) to the line
        of its first component, whose product and taxes a termination credit takes; the lines of its
        other components bill the same schedule and are found by it."""
        bundles = self.filtered(
            lambda schedule: schedule.iot_fee_split and schedule.product_id.iot_bundle_lines == "options"
        )
        if not bundles:
            return super()._iot_link_invoice_lines(line_parts)
        first_product = {
            schedule.id: json.loads(schedule.iot_fee_split)[0][0] for schedule in bundles
            if json.loads(schedule.iot_fee_split)
        }
        line_products = {
            line.id: line.product_id.id
            for line in self.env["account.move.line"].browse([line_id for line_id, _parts in line_parts])
        }
        kept = []
        for line_id, parts in line_parts:
            members = [
                part for part in parts
                if part["kind"] != "fixed" or part["schedule_id"] not in first_product
                or first_product[part["schedule_id"]] == line_products[line_id]
            ]
            if members:
                kept.append((line_id, members))
        return super()._iot_link_invoice_lines(kept)
