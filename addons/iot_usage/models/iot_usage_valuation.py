from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.iot_contract.tools import period_share
from odoo.addons.iot_contract.tools.billing_types import LinePart
from odoo.addons.iot_device.tools import to_decimal
from odoo.tools import SQL

from .iot_usage_calculator import UsageScope


class UsageLinePart(LinePart, total=False):
    """What a usage part adds to the engine's ``LinePart`` (``_invoice_line_parts``)."""

    calculator_id: int  # the iot.usage.calculator that valued it
    metric_id: int
    valuation_id: int  # this model's row: linked to the invoice line it is billed on


class IotUsageValuation(models.Model):
    """What one rule made of one schedule's usage; once invoiced, what was billed.

    Valuations of planned schedules are rebuilt by every valuation. When the schedule is
    invoiced, the row keeps the rule's name and unit price as they were and the invoice
    line it went to: the invoice's detail reads it back, whatever the rule becomes later.
    """

    _name = "iot.usage.valuation"
    _description = "IoT Usage Valuation"
    _order = "schedule_id, sequence, id"
    # Rebuilt by every valuation, one row per schedule and rule: no create/write user
    # and date, whose foreign keys cost about a sixth of each insert (as on iot.usage).
    _log_access = False

    schedule_id = fields.Many2one("iot.invoicing.schedule", required=True, ondelete="cascade", index=True)
    calculator_id = fields.Many2one("iot.usage.calculator", required=True, ondelete="restrict")
    name = fields.Char(string="Usage Calculator", help="The usage calculator's name when it was valued.")
    sequence = fields.Integer()
    company_id = fields.Many2one(related="schedule_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="schedule_id.currency_id")
    quantity = fields.Float(digits=(20, 6), help="The period's aggregated quantity.")
    billable_quantity = fields.Float(digits=(20, 6), help="Quantity after the included allowance.")
    unit_price = fields.Float(digits="IoT Usage Price", help="The usage calculator's unit price when it was valued.")
    amount = fields.Monetary()
    reading_count = fields.Integer()
    move_line_id = fields.Many2one(
        "account.move.line", string="Invoice Line", readonly=True, index="btree_not_null", ondelete="set null",
        help="The invoice line this amount was billed on.",
    )

    # ------------------------------------------------------------------
    # Valuing schedules
    # ------------------------------------------------------------------
    @api.model
    def _value_schedules(self, schedules):
        """Value the usage of (planned) ``schedules``: their readings must be assigned.

        Replaces their valuations and writes each schedule's usage figures, in a few
        statements for the whole set.
        """
        scopes = self._usage_scopes(schedules)
        measures = self.env["iot.usage.calculator"]._evaluate(scopes)
        self._deduct_billed(measures, [scope.key for scope in scopes if scope.rerate])
        rows = [
            (scope.key, calculator, measures[scope.key, calculator.id])
            for scope in scopes
            for calculator in scope.calculators
        ]
        self._replace(schedules, rows)

    @api.model
    def _usage_scopes(self, schedules, to_date=False):
        """The UsageScope of each schedule, keyed by its id: its rules, currency, price terms and
        proration as billing values it. ``to_date``: measured over the device's usage of the
        period's days as it stands (prepaid rating as readings arrive, before the period's
        buckets are assigned to it) rather than over the buckets assigned to the schedule."""
        # What the scopes need of each schedule, in one query: a fleet's run values one
        # schedule per device, and per-record ORM reads would cost more than the valuation.
        schedules.flush_model()
        self.env["iot.contract.item"].flush_model(["billing_period", "cycle_anchor"])
        self.env["iot.contract"].flush_model(["fiscal_position_id", "tz"])
        facts = self.env.execute_query(SQL(
            """
            SELECT schedule.id, schedule.contract_item_id, product.product_tmpl_id, schedule.product_id,
                   schedule.company_id, contract.fiscal_position_id, schedule.currency_id, schedule.invoice_date,
                   schedule.device_id, schedule.date_from, schedule.date_to, item.billing_period, item.cycle_anchor,
                   contract.tz, schedule.part
              FROM iot_invoicing_schedule schedule
              JOIN iot_contract_item item ON item.id = schedule.contract_item_id
              JOIN iot_contract contract ON contract.id = schedule.contract_id
              JOIN product_product product ON product.id = schedule.product_id
             WHERE schedule.id = ANY(%s)
            """,
            schedules.ids,
        ))
        calculators = self._calculators(facts)
        no_rules = self.env["iot.usage.calculator"]
        price_terms = PriceTerms(self.env)
        currencies, shares = {}, {}
        scopes = []
        for (
            schedule_id, item_id, template_id, plan_id, company_id, fiscal_position_id, currency_id, invoice_date,
            device_id, date_from, date_to, billing_period, anchor, tz, part,
        ) in facts:
            if currency_id not in currencies:
                currencies[currency_id] = self.env["res.currency"].browse(currency_id)
            period = (date_from, date_to, billing_period, anchor)
            if period not in shares:
                shares[period] = period_share(*period)
            rules = calculators.get(item_id) or calculators.get(("plan", template_id), no_rules)
            scopes.append(UsageScope(
                key=schedule_id, calculators=rules,
                currency=currencies[currency_id], device_id=device_id, date_from=date_from, date_to=date_to,
                schedule_id=None if to_date else schedule_id, proration=shares[period], tz=tz,
                rerate=part == "late" and not to_date,
                convert=price_terms.converter(plan_id, company_id, fiscal_position_id, currency_id, invoice_date),
            ))
        return scopes

    @api.model
    def _deduct_billed(self, measures, late_ids):
        """A late-usage schedule bills its period re-rated with every reading, less what the
        period's invoiced schedules already billed for each rule (never less than nothing: a
        reading that lowers an average or a last value credits nothing)."""
        if not late_ids:
            return
        billed = self.env.execute_query(SQL(
            """
            SELECT late.id, valuation.calculator_id, sum(valuation.amount)::text
              FROM iot_invoicing_schedule late
              JOIN iot_invoicing_schedule billed ON billed.contract_item_id = late.contract_item_id
               AND billed.date_from = late.date_from AND billed.state = 'invoiced' AND billed.part != 'fee'
              JOIN iot_usage_valuation valuation ON valuation.schedule_id = billed.id
             WHERE late.id = ANY(%s)
             GROUP BY late.id, valuation.calculator_id
            """,
            late_ids,
        ))
        for late_id, calculator_id, amount in billed:
            measure = measures.get((late_id, calculator_id))
            if measure:
                remaining = max(Decimal(0), measure.amount - Decimal(amount))
                measures[late_id, calculator_id] = measure._replace(amount=remaining)

    @api.model
    def _calculators(self, facts):
        """Rules by contract item id (the item's own) and by ``("plan", template id)``: an item
        with rules of its own is valued by them, else by its plan's."""
        Calculator = self.env["iot.usage.calculator"]
        item_ids = list({row[1] for row in facts})
        template_ids = list({row[2] for row in facts})
        rules = {}
        for calculator in Calculator.search([("contract_item_id", "in", item_ids)]):
            rules[calculator.contract_item_id.id] = rules.get(calculator.contract_item_id.id, Calculator) | calculator
        for calculator in Calculator.search([("product_tmpl_id", "in", template_ids)]):
            key = ("plan", calculator.product_tmpl_id.id)
            rules[key] = rules.get(key, Calculator) | calculator
        return rules

    @api.model
    def _replace(self, schedules, rows):
        """Replace the schedules' valuations by ``rows`` ``(schedule id, calculator, Measure)``
        and write their usage figures, in three statements."""
        self.flush_model()
        schedules.flush_model()
        cr = self.env.cr
        cr.execute("DELETE FROM iot_usage_valuation WHERE schedule_id = ANY(%s)", (schedules.ids,))
        if rows:
            cr.execute(
                """
                INSERT INTO iot_usage_valuation (
                    schedule_id, calculator_id, name, sequence, company_id, quantity, billable_quantity,
                    unit_price, amount, reading_count)
                SELECT row.schedule_id, row.calculator_id, row.name, row.sequence, schedule.company_id,
                       row.quantity, row.billable, row.unit_price, row.amount, row.reading_count
                  FROM unnest(%(schedule_ids)s::int[], %(calculator_ids)s::int[], %(names)s::varchar[],
                              %(sequences)s::int[], %(quantities)s::numeric[], %(billables)s::numeric[],
                              %(unit_prices)s::numeric[], %(amounts)s::numeric[], %(counts)s::int[])
                       AS row(schedule_id, calculator_id, name, sequence, quantity, billable, unit_price,
                              amount, reading_count)
                  JOIN iot_invoicing_schedule schedule ON schedule.id = row.schedule_id
                """,
                {
                    "schedule_ids": [schedule_id for schedule_id, _c, _m in rows],
                    "calculator_ids": [calculator.id for _s, calculator, _m in rows],
                    "names": [calculator.name for _s, calculator, _m in rows],
                    "sequences": [calculator.sequence for _s, calculator, _m in rows],
                    "quantities": [measure.quantity for _s, _c, measure in rows],
                    "billables": [measure.billable for _s, _c, measure in rows],
                    "unit_prices": [measure.unit_price for _s, _c, measure in rows],
                    "amounts": [measure.amount for _s, _c, measure in rows],
                    "counts": [measure.count for _s, _c, measure in rows],
                },
            )
        # The schedule shows its first rule's quantity and the sum of every rule's amount.
        usage_by_schedule = {}
        for schedule_id, _calculator, measure in rows:
            if schedule_id in usage_by_schedule:
                usage_by_schedule[schedule_id][1] += measure.amount
            else:
                usage_by_schedule[schedule_id] = [measure.quantity, measure.amount]
        ids = schedules.ids
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
        schedules.invalidate_model(["usage_quantity", "usage_amount", "amount_total", "valuation_ids"])
        self.invalidate_model()

    # ------------------------------------------------------------------
    # Invoicing
    # ------------------------------------------------------------------
    @api.model
    def _invoice_line_parts(self, schedules):
        """The usage parts of ``schedules`` (``UsageLinePart``, see
        ``iot.invoicing.schedule._iot_invoice_line_parts``): one per schedule and rule with an
        amount, carrying its valuation."""
        if not schedules:
            return []
        digits_price = self.env["decimal.precision"].precision_get("Product Price")
        digits_quantity = self.env["decimal.precision"].precision_get("Product Unit of Measure")
        # Translated once: a fleet has thousands of parts and a handful of rules.
        label = self.env._("%(device)s — %(rule)s — %(date_from)s to %(date_to)s: %(quantity)s %(unit)s")
        # One query for what the labels need: a fleet's run has one usage part per
        # device and rule, and per-record ORM reads would cost more than the rest.
        self.flush_model()
        schedules.flush_model(["currency_id", "product_id", "date_from", "date_to", "contract_item_id"])
        self.env["iot.contract.item"].flush_model(["name"])
        rows = self.env.execute_query(SQL(
            """
            SELECT valuation.id, valuation.schedule_id, valuation.calculator_id, valuation.name,
                   valuation.quantity, valuation.billable_quantity, valuation.unit_price, valuation.amount,
                   schedule.currency_id, schedule.product_id, schedule.date_from, schedule.date_to, item.name
              FROM iot_usage_valuation valuation
              JOIN iot_invoicing_schedule schedule ON schedule.id = valuation.schedule_id
              JOIN iot_contract_item item ON item.id = schedule.contract_item_id
             WHERE valuation.schedule_id = ANY(%s) AND valuation.amount != 0
             ORDER BY valuation.schedule_id, valuation.sequence, valuation.id
            """,
            schedules.ids,
        ))
        rules, currencies, parts = {}, {}, []
        for (
            valuation_id, schedule_id, calculator_id, rule_name, quantity, billable_quantity, unit_price, amount,
            currency_id, product_id, date_from, date_to, item_name,
        ) in rows:
            if calculator_id not in rules:
                calculator = self.env["iot.usage.calculator"].browse(calculator_id)
                rules[calculator_id] = (
                    calculator,
                    calculator._unit_label() or "",
                    calculator.metric_id.id,
                    calculator.invoice_product_id.id,
                )
            calculator, unit, metric_id, invoice_product_id = rules[calculator_id]
            if currency_id not in currencies:
                currencies[currency_id] = self.env["res.currency"].browse(currency_id)
            line_quantity, price_unit = _line_quantity_and_price(
                amount, billable_quantity, unit_price, calculator, currencies[currency_id],
                digits_price, digits_quantity,
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
                    "valuation_id": valuation_id,
                }
            )
        return parts

    @api.model
    def _link_move_lines(self, line_parts):
        """Record the invoice line each valued part was billed on: ``[(move line id, parts)]``."""
        pairs = [
            (part["valuation_id"], line_id)
            for line_id, parts in line_parts
            for part in parts
            if part.get("valuation_id")
        ]
        if not pairs:
            return
        self.flush_model(["move_line_id"])
        self.env.cr.execute(
            """UPDATE iot_usage_valuation valuation SET move_line_id = row.line_id
                 FROM unnest(%s::int[], %s::int[]) AS row(id, line_id)
                WHERE valuation.id = row.id""",
            ([valuation_id for valuation_id, _l in pairs], [line_id for _v, line_id in pairs]),
        )
        self.invalidate_model(["move_line_id"])


class PriceTerms:
    """How a rule's prices become the prices billed on a schedule, as Odoo would price a manual
    invoice line of the same product: a price-included tax mapped by the contract's fiscal
    position to another tax adapts the price (``_get_tax_included_unit_price_from_price``), then
    the price is converted from the company's currency into the contract's at the schedule's
    invoice date, unrounded; the amount is rounded in the contract's currency."""

    def __init__(self, env):
        self.env = env
        self._rates = {}
        self._converters = {}
        self._rule_products = {}

    def converter(self, plan_id, company_id, fiscal_position_id, currency_id, date):
        """``calculator -> (price -> billed price, or None when unchanged)`` for one schedule."""
        context = (company_id, fiscal_position_id, currency_id, date)

        def for_rule(calculator):
            if calculator.id not in self._rule_products:
                self._rule_products[calculator.id] = calculator.invoice_product_id.id
            key = (self._rule_products[calculator.id] or plan_id, *context)
            if key not in self._converters:
                self._converters[key] = self._make(*key)
            return self._converters[key]

        return for_rule

    def _make(self, product_id, company_id, fiscal_position_id, currency_id, date):
        product = self.env["product.product"].browse(product_id)
        company = self.env["res.company"].browse(company_id)
        fiscal_position = self.env["account.fiscal.position"].browse(fiscal_position_id)
        currency = self.env["res.currency"].browse(currency_id)
        taxes = product.taxes_id._filter_taxes_by_company(company)
        adapt = bool(fiscal_position and taxes and fiscal_position.map_tax(taxes) != taxes)
        rate = self._rate(company, currency, date)
        if not adapt and rate == 1:
            return None

        def convert(price):
            if adapt and price:
                adapted = product._get_tax_included_unit_price_from_price(
                    float(price), taxes, fiscal_position=fiscal_position
                )
                price = to_decimal(adapted)
            return price * rate

        return convert

    def _rate(self, company, currency, date):
        key = (company, currency, date)
        if key not in self._rates:
            source = company.currency_id
            self._rates[key] = (
                Decimal(1) if currency == source
                else to_decimal(source._get_conversion_rate(source, currency, company, date))
            )
        return self._rates[key]


def _format_quantity(quantity):
    text = ("%.6f" % quantity).rstrip("0").rstrip(".")
    return text or "0"


def _line_quantity_and_price(
    amount, billable_quantity, unit_price, calculator, currency, digits_price, digits_quantity
):
    """Quantity and unit price for the usage line; they always multiply to its amount.

    The metered quantity and the rule's unit price are shown when the line can
    carry them exactly (precision of prices and quantities, plain per-unit rule);
    otherwise the line is 1 x amount and the label carries the quantity.
    """
    amount = to_decimal(amount)
    quantity = to_decimal(billable_quantity)
    price = to_decimal(unit_price)
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

