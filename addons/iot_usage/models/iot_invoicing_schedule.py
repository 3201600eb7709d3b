from collections import defaultdict
from decimal import Decimal

from odoo import api, fields, models

from .iot_usage_calculator import to_decimal

# Readings are assigned to the schedule whose period holds their timestamp; one
# measured in a period already invoiced goes to the item's next open schedule.
# They are marked valued in the same statement (each UPDATE of a reading rewrites
# it and all its index entries): the valuation that follows runs in the same
# transaction, so a failure rolls both back.
# The due schedules drive the join (materialized first) so that PostgreSQL looks
# up each device's readings by index instead of pairing every item with every reading.
ASSIGN_READINGS_SQL = """
    WITH due AS MATERIALIZED (
        SELECT schedule.id, schedule.device_id, schedule.contract_item_id,
               schedule.date_from, schedule.date_to, item.date_start, item.date_end
          FROM unnest(%(schedule_ids)s::int[]) AS due_id(id)
          JOIN iot_invoicing_schedule schedule ON schedule.id = due_id.id
          JOIN iot_contract_item item ON item.id = schedule.contract_item_id
         WHERE schedule.device_id IS NOT NULL
    ),
    candidate AS (
        SELECT DISTINCT ON (usage.id)
               usage.id AS usage_id, due.id AS schedule_id, due.contract_item_id,
               usage.timestamp < due.date_from AS is_late
          FROM due
          JOIN iot_usage usage ON usage.device_id = due.device_id
         WHERE usage.state = 'to_value'
           AND usage.timestamp >= due.date_start
           AND (due.date_end IS NULL OR usage.timestamp < due.date_end + 1)
           AND usage.timestamp < due.date_to + 1
           AND (usage.timestamp >= due.date_from
                OR NOT EXISTS (
                    SELECT 1 FROM iot_invoicing_schedule open_period
                     WHERE open_period.contract_item_id = due.contract_item_id
                       AND open_period.state = 'planned'
                       AND open_period.id <> due.id
                       AND usage.timestamp >= open_period.date_from
                       AND usage.timestamp < open_period.date_to + 1))
         ORDER BY usage.id, due.date_from
    )
    UPDATE iot_usage usage
       SET schedule_id = candidate.schedule_id,
           contract_item_id = candidate.contract_item_id,
           is_late = candidate.is_late,
           state = 'valued'
      FROM candidate
     WHERE usage.id = candidate.usage_id
"""

AGGREGATE_READINGS_SQL = """
    SELECT schedule_id, metric_id, sum(quantity)::text, count(*), max(quantity)::text,
           round(avg(quantity), 6)::text, ((array_agg(quantity ORDER BY timestamp DESC, id DESC))[1])::text
      FROM iot_usage
     WHERE schedule_id = ANY(%(schedule_ids)s) AND state IN ('to_value', 'valued')
     GROUP BY schedule_id, metric_id
"""


class IotInvoicingSchedule(models.Model):
    _inherit = "iot.invoicing.schedule"

    usage_ids = fields.One2many("iot.usage", "schedule_id", string="Readings")
    valuation_ids = fields.One2many("iot.usage.valuation", "schedule_id", string="Usage valuation")

    # ------------------------------------------------------------------
    # Hooks of the billing engine
    # ------------------------------------------------------------------
    def _iot_value_usage(self, run):
        result = super()._iot_value_usage(run)
        planned = self.filtered(lambda schedule: schedule.state == "planned")
        if planned:
            planned._iot_assign_readings()
            planned._iot_write_valuations(planned._iot_compute_valuations())
        return result

    def _iot_invoice_line_parts(self):
        parts = super()._iot_invoice_line_parts()
        if not self:
            return parts
        digits_price = self.env["decimal.precision"].precision_get("Product Price")
        digits_quantity = self.env["decimal.precision"].precision_get("Product Unit of Measure")
        # Translated once: a fleet has thousands of parts and a handful of rules.
        label = self.env._("%(device)s — %(rule)s — %(date_from)s to %(date_to)s: %(quantity)s %(unit)s")
        # One query for what the labels need: a fleet's run has one usage part per
        # device and rule, and per-record ORM reads would cost more than the rest.
        self.env["iot.usage.valuation"].flush_model()
        self.flush_model(["contract_item_id", "product_id", "currency_id", "date_from", "date_to"])
        self.env["iot.contract.item"].flush_model(["name"])
        self.env.cr.execute(
            """
            SELECT valuation.schedule_id, valuation.calculator_id, valuation.quantity,
                   valuation.billable_quantity, valuation.amount, schedule.currency_id,
                   schedule.product_id, schedule.date_from, schedule.date_to, item.name
              FROM iot_usage_valuation valuation
              JOIN iot_invoicing_schedule schedule ON schedule.id = valuation.schedule_id
              JOIN iot_contract_item item ON item.id = schedule.contract_item_id
             WHERE valuation.schedule_id = ANY(%s) AND valuation.amount != 0
             ORDER BY valuation.schedule_id, valuation.sequence, valuation.id
            """,
            [self.ids],
        )
        rules, currencies = {}, {}
        for (
            schedule_id, calculator_id, quantity, billable_quantity, amount, currency_id, product_id,
            date_from, date_to, item_name,
        ) in self.env.cr.fetchall():
            if calculator_id not in rules:
                calculator = self.env["iot.usage.calculator"].browse(calculator_id)
                rules[calculator_id] = (
                    calculator, calculator.name, calculator._unit_label() or "", calculator.metric_id.id,
                    calculator.invoice_product_id.id,
                )
            calculator, rule_name, unit, metric_id, invoice_product_id = rules[calculator_id]
            if currency_id not in currencies:
                currencies[currency_id] = self.env["res.currency"].browse(currency_id)
            line_quantity, price_unit = _line_quantity_and_price(
                amount, billable_quantity, calculator, currencies[currency_id], digits_price, digits_quantity
            )
            parts.append(
                {
                    "schedule_id": schedule_id,
                    "kind": "usage",
                    "product_id": invoice_product_id or product_id,
                    "name": label % {
                        "device": item_name,
                        "rule": rule_name,
                        "date_from": date_from,
                        "date_to": date_to,
                        "quantity": _format_quantity(quantity),
                        "unit": unit,
                    },
                    "quantity": line_quantity,
                    "price_unit": price_unit,
                    "amount": amount,
                    "currency_id": currency_id,
                    "calculator_id": calculator_id,
                    "metric_id": metric_id,
                }
            )
        return parts

    def write(self, vals):
        result = super().write(vals)
        if vals.get("state") == "invoiced":
            self._iot_mark_readings("valued", "invoiced")
        elif vals.get("state") == "cancelled":
            # Readings of a cancelled period wait for another schedule (or rejection).
            self._iot_mark_readings(("to_value", "valued"), "to_value", detach=True)
        return result

    # ------------------------------------------------------------------
    # Valuation steps (set-based: a few queries per run, not per device)
    # ------------------------------------------------------------------
    def _iot_assign_readings(self):
        self.env["iot.usage"].flush_model()
        self.flush_model()
        self.env.cr.execute(ASSIGN_READINGS_SQL, {"schedule_ids": self.ids})
        self.env["iot.usage"].invalidate_model(["schedule_id", "contract_item_id", "is_late", "state"])

    def _iot_calculators(self):
        """Calculators per schedule: the item's own when it has some, else its plan's."""
        Calculator = self.env["iot.usage.calculator"]
        items = self.contract_item_id
        own = Calculator.search([("contract_item_id", "in", items.ids)])
        by_plan = Calculator.search([("product_tmpl_id", "in", self.product_id.product_tmpl_id.ids)])
        own_by_item = defaultdict(list)
        for calculator in own:
            own_by_item[calculator.contract_item_id.id].append(calculator)
        plan_by_product = defaultdict(list)
        for calculator in by_plan:
            plan_by_product[calculator.product_tmpl_id.id].append(calculator)
        return {
            schedule.id: own_by_item.get(schedule.contract_item_id.id)
            or plan_by_product.get(schedule.product_id.product_tmpl_id.id, [])
            for schedule in self
        }

    def _iot_compute_valuations(self):
        """Return valuation rows: (schedule, calculator, quantity, billable, amount, count)."""
        calculators_by_schedule = self._iot_calculators()
        calculators = {c for group in calculators_by_schedule.values() for c in group}
        if not calculators:
            return []
        cr = self.env.cr
        cr.execute(AGGREGATE_READINGS_SQL, {"schedule_ids": self.ids})
        aggregates = {
            (schedule_id, metric_id): {
                "sum": total, "count": count, "max": maximum, "avg": average, "last": last,
            }
            for schedule_id, metric_id, total, count, maximum, average, last in cr.fetchall()
        }
        special = {}  # (schedule id, calculator id) -> (quantity, count, per-reading amounts)
        for calculator in calculators:
            ids = [s for s, group in calculators_by_schedule.items() if calculator in group]
            special.update(self.browse(ids)._iot_special_aggregates(calculator))

        rows = []
        for schedule in self:
            for calculator in calculators_by_schedule[schedule.id]:
                if (schedule.id, calculator.id) in special:
                    quantity, count, reading_amount = special[schedule.id, calculator.id]
                else:
                    values = aggregates.get((schedule.id, calculator.metric_id.id), {})
                    quantity = values.get(calculator.aggregation) or 0
                    count, reading_amount = values.get("count", 0), None
                quantity = to_decimal(quantity).quantize(Decimal("0.000001"))
                amount = calculator._price(
                    quantity, schedule.currency_id,
                    reading_amounts=None if reading_amount is None else [reading_amount],
                )
                billable = max(Decimal(0), quantity - to_decimal(calculator.included_quantity))
                rows.append((schedule, calculator, quantity, billable, amount, count))
        return rows

    def _iot_special_aggregates(self, calculator):
        """Aggregations that need the calculator's own parameters in the query."""
        cr = self.env.cr
        if calculator.source == "event":
            cr.execute(
                """
                SELECT schedule.id, count(event.id), count(event.id)
                  FROM iot_invoicing_schedule schedule
                  JOIN iot_billing_device_event event
                    ON event.device_id = schedule.device_id AND event.event_type = %s
                   AND event.date >= schedule.date_from AND event.date < schedule.date_to + 1
                 WHERE schedule.id = ANY(%s)
                 GROUP BY schedule.id
                """,
                (calculator.event_type, self.ids),
            )
            return {(sid, calculator.id): (qty, count, None) for sid, qty, count in cr.fetchall()}
        if calculator.aggregation == "count_unique":
            cr.execute(
                """
                SELECT schedule_id, count(DISTINCT payload ->> %s), count(*)
                  FROM iot_usage
                 WHERE schedule_id = ANY(%s) AND metric_id = %s AND state IN ('to_value', 'valued')
                 GROUP BY schedule_id
                """,
                (calculator.payload_key, self.ids, calculator.metric_id.id),
            )
            return {(sid, calculator.id): (qty, count, None) for sid, qty, count in cr.fetchall()}
        if calculator.rounding == "reading":
            step = to_decimal(calculator.company_id.currency_id.rounding or 0.01)
            cr.execute(
                """
                SELECT schedule_id, sum(quantity)::text, count(*),
                       sum(round(quantity * %(price)s / %(step)s) * %(step)s)::text
                  FROM iot_usage
                 WHERE schedule_id = ANY(%(ids)s) AND metric_id = %(metric)s
                   AND state IN ('to_value', 'valued')
                 GROUP BY schedule_id
                """,
                {"price": to_decimal(calculator.unit_price), "step": step, "ids": self.ids,
                 "metric": calculator.metric_id.id},
            )
            return {
                (sid, calculator.id): (qty, count, Decimal(amount)) for sid, qty, count, amount in cr.fetchall()
            }
        return {}

    def _iot_write_valuations(self, rows):
        """Replace the schedules' valuations and usage figures in three statements."""
        cr = self.env.cr
        Valuation = self.env["iot.usage.valuation"]
        Valuation.flush_model()
        self.flush_model()
        cr.execute("DELETE FROM iot_usage_valuation WHERE schedule_id = ANY(%s)", (self.ids,))
        if rows:
            cr.execute(
                """
                INSERT INTO iot_usage_valuation (
                    schedule_id, calculator_id, sequence, company_id, quantity, billable_quantity,
                    amount, reading_count)
                SELECT row.schedule_id, row.calculator_id, row.sequence, schedule.company_id,
                       row.quantity, row.billable, row.amount, row.reading_count
                  FROM unnest(%(schedule_ids)s::int[], %(calculator_ids)s::int[], %(sequences)s::int[],
                              %(quantities)s::numeric[], %(billables)s::numeric[],
                              %(amounts)s::numeric[], %(counts)s::int[])
                       AS row(schedule_id, calculator_id, sequence, quantity, billable, amount,
                              reading_count)
                  JOIN iot_invoicing_schedule schedule ON schedule.id = row.schedule_id
                """,
                {
                    "schedule_ids": [row[0].id for row in rows],
                    "calculator_ids": [row[1].id for row in rows],
                    "sequences": [row[1].sequence for row in rows],
                    "quantities": [row[2] for row in rows],
                    "billables": [row[3] for row in rows],
                    "amounts": [row[4] for row in rows],
                    "counts": [row[5] for row in rows],
                },
            )
        # The schedule shows its first rule's quantity and the sum of every rule's amount.
        usage_by_schedule = {}
        for schedule, _calculator, quantity, _billable, amount, _count in rows:
            if schedule.id in usage_by_schedule:
                usage_by_schedule[schedule.id][1] += amount
            else:
                usage_by_schedule[schedule.id] = [quantity, amount]
        ids = self.ids
        cr.execute(
            """
            UPDATE iot_invoicing_schedule schedule
               SET usage_quantity = row.quantity, usage_amount = row.amount,
                   amount_total = schedule.fixed_amount + row.amount
              FROM unnest(%s::int[], %s::numeric[], %s::numeric[]) AS row(id, quantity, amount)
             WHERE schedule.id = row.id
            """,
            (
                ids,
                [usage_by_schedule.get(sid, (0, 0))[0] for sid in ids],
                [usage_by_schedule.get(sid, (0, 0))[1] for sid in ids],
            ),
        )
        self.invalidate_model(["usage_quantity", "usage_amount", "amount_total", "valuation_ids"])
        Valuation.invalidate_model()

    def _iot_mark_readings(self, from_states, to_state, detach=False):
        if isinstance(from_states, str):
            from_states = (from_states,)
        self.env["iot.usage"].flush_model()
        detach_sql = ", schedule_id = NULL, is_late = false" if detach else ""
        self.env.cr.execute(
            "UPDATE iot_usage SET state = %s" + detach_sql  # noqa: S608 - constant fragment
            + " WHERE schedule_id = ANY(%s) AND state IN %s",
            (to_state, self.ids, tuple(from_states)),
        )
        self.env["iot.usage"].invalidate_model(["state", "schedule_id", "is_late"])

    @api.model
    def _iot_reject_orphan_readings(self, company, before):
        """Readings older than ``before`` that no contract item covers are rejected, with
        the reason, so that they show up for re-processing instead of waiting forever."""
        self.env["iot.usage"].flush_model()
        self.env.cr.execute(
            """
            UPDATE iot_usage usage
               SET state = 'rejected', reject_reason = 'outside any active contract item'
             WHERE usage.state = 'to_value' AND usage.company_id = %s AND usage.timestamp < %s
               AND NOT EXISTS (
                   SELECT 1 FROM iot_contract_item item
                    WHERE item.device_id = usage.device_id
                      AND usage.timestamp >= item.date_start
                      AND (item.date_end IS NULL OR usage.timestamp < item.date_end + 1))
            """,
            (company.id, before),
        )
        count = self.env.cr.rowcount
        self.env["iot.usage"].invalidate_model(["state", "reject_reason"])
        return count


def _format_quantity(quantity):
    text = ("%.6f" % quantity).rstrip("0").rstrip(".")
    return text or "0"


def _line_quantity_and_price(amount, billable_quantity, calculator, currency, digits_price, digits_quantity):
    """Quantity and unit price for the usage line; they always multiply to its amount.

    The metered quantity and the rule's unit price are shown when the line can
    carry them exactly (precision of prices and quantities, plain per-unit rule);
    otherwise the line is 1 x amount and the label carries the quantity.
    """
    amount = to_decimal(amount)
    quantity = to_decimal(billable_quantity)
    price = to_decimal(calculator.unit_price)
    exact = (
        calculator.pricing == "per_unit"
        and calculator.rounding == "period"
        and not calculator.minimum_amount
        and quantity > 0
        and quantity == quantity.quantize(Decimal(1).scaleb(-digits_quantity))
        and price == price.quantize(Decimal(1).scaleb(-digits_price))
        and calculator._round_amount(quantity * price, currency) == amount
    )
    if exact:
        return float(quantity), float(price)
    return 1.0, float(amount)

