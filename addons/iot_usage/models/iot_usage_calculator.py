from collections import namedtuple
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from odoo import api, fields, models
from odoo.addons.iot_device.tools import to_decimal
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL

from .iot_usage import QUANTITY_STEP

AGGREGATIONS = [
    ("sum", "Sum"),
    ("count", "Count of readings"),
    ("max", "Maximum"),
    ("last", "Last reading"),
    ("avg", "Average"),
    ("count_unique", "Count of distinct payload values"),
]
PRICINGS = [
    ("per_unit", "Per unit"),
    ("graduated", "Graduated tiers"),
    ("volume", "Volume tiers"),
    ("package", "Per package of N units"),
    ("flat", "Flat amount above a threshold"),
]


# What usage is measured over, for billing and for the rule wizard alike.
# ``key``: how the caller names it in the result; ``calculators``: the rules to apply;
# ``currency``: the currency amounts are rounded in; ``device_id``, ``date_from`` and
# ``date_to`` (included) bound the events counted and, without a schedule, the readings;
# ``schedule_id``: when set, the readings are those assigned to that schedule (billing:
# late readings included, readings already invoiced excluded).
# ``convert``: for a rule, the function that turns its prices into billed prices (or None);
# ``proration``: the share of a full billing period the scope covers.
# ``tz``: the time zone whose midnights bound the dates (the contract's); ``rerate``: a
# late-usage schedule, measured on its own readings and the period's readings already invoiced.
UsageScope = namedtuple(
    "UsageScope",
    "key calculators currency device_id date_from date_to schedule_id convert proration tz rerate",
    defaults=(None, Decimal(1), "UTC", False),
)
# What one rule made of one scope: the measured quantity, the readings (or events) counted,
# the quantity after the included allowance, the amount in the scope's currency and the
# unit price billed (the rule's, converted).
Measure = namedtuple("Measure", "quantity count billable amount unit_price")

# Aggregations read from one grouped query per scope and metric over its usage buckets
# (iot.usage.bucket); the others need the rule's own parameters in the query (a payload key,
# a unit price). The last reading: the latest timestamp, and on a tie the one stored last.
PLAIN_AGGREGATES = {
    "sum": "sum(bucket.quantity_sum)",
    "count": "sum(bucket.reading_count)",
    "max": "max(bucket.quantity_max)",
    "avg": "round(sum(bucket.quantity_sum) / nullif(sum(bucket.reading_count), 0), 6)",
    "last": "(array_agg(bucket.last_quantity ORDER BY bucket.last_at DESC, bucket.last_seq DESC))[1]",
}


class IotUsageCalculator(models.Model):
    _name = "iot.usage.calculator"
    _description = "IoT Usage Data Calculator"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True, help="Shown on the invoice line.")
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    product_tmpl_id = fields.Many2one(
        "product.template", string="Plan", index=True, ondelete="cascade",
        help="The plan whose contract items are valued by this usage calculator.",
    )
    contract_item_id = fields.Many2one(
        "iot.contract.item", index="btree_not_null", ondelete="cascade",
        help="Set to override the plan's usage calculators for one contract item.",
    )
    company_id = fields.Many2one("res.company", default=lambda self: self.env.company)
    currency_id = fields.Many2one(related="company_id.currency_id")
    source = fields.Selection(
        [("usage", "Usage readings"), ("event", "Device events")], required=True, default="usage"
    )
    metric_id = fields.Many2one("iot.usage.metric", ondelete="restrict")
    event_type = fields.Char(help="Event code counted when the source is device events.")
    aggregation = fields.Selection(AGGREGATIONS, required=True, default="sum")
    payload_key = fields.Char(help="Payload key whose distinct values are counted.")
    pricing = fields.Selection(PRICINGS, required=True, default="per_unit")
    unit_price = fields.Float(
        digits="IoT Usage Price",
        help="Price per unit, per package, or the flat amount, depending on the pricing.",
    )
    package_size = fields.Float(digits=(20, 6), default=1.0)
    included_quantity = fields.Float(
        digits=(20, 6), help="Free allowance per period, deducted before pricing."
    )
    minimum_amount = fields.Monetary(help="Charged when the period's amount is lower.")
    prorate_partial_periods = fields.Boolean(
        default=True,
        help="A period shorter than the billing period (activation or termination in its course) "
        "gets the included quantity and the minimum amount in proportion to its days, like the fixed fee.",
    )
    rounding = fields.Selection(
        [("period", "Round the period's amount"), ("reading", "Round each reading's amount")],
        required=True,
        default="period",
        help="Per reading: each reading's amount is rounded to the currency before the sum "
        "(per-unit pricing of a sum only).",
    )
    tier_ids = fields.One2many("iot.usage.calculator.tier", "calculator_id", string="Tiers", copy=True)
    invoice_product_id = fields.Many2one(
        "product.product", help="Product of the usage invoice line; the plan itself when empty."
    )

    @api.constrains("source", "metric_id", "event_type", "aggregation", "payload_key", "pricing",
                    "package_size", "tier_ids", "product_tmpl_id", "contract_item_id", "rounding")
    def _check_rule(self):
        for calculator in self:
            if bool(calculator.product_tmpl_id) == bool(calculator.contract_item_id):
                raise ValidationError(
                    self.env._("Calculator %s: set either a plan or a contract item.", calculator.name)
                )
            if calculator.source == "usage" and not calculator.metric_id:
                raise ValidationError(self.env._("Calculator %s needs a metric.", calculator.name))
            if calculator.source == "event" and not calculator.event_type:
                raise ValidationError(self.env._("Calculator %s needs an event type.", calculator.name))
            if calculator.source == "event" and calculator.aggregation != "count":
                raise ValidationError(self.env._("Device events can only be counted."))
            if calculator.aggregation == "count_unique" and not calculator.payload_key:
                raise ValidationError(self.env._("Counting distinct values needs a payload key."))
            if calculator.pricing == "package" and calculator.package_size <= 0:
                raise ValidationError(self.env._("The package size must be positive."))
            if calculator.pricing in ("graduated", "volume") and not calculator.tier_ids:
                raise ValidationError(self.env._("Tiered pricing needs at least one tier."))
            if calculator.rounding == "reading" and (
                calculator.pricing != "per_unit"
                or calculator.aggregation != "sum"
                or calculator.included_quantity
            ):
                raise ValidationError(
                    self.env._(
                        "Rounding per reading applies to per-unit pricing of a sum, "
                        "without included quantity."
                    )
                )

    # ------------------------------------------------------------------
    # Measuring: one method for billing and the rule wizard
    # ------------------------------------------------------------------
    @api.model
    def _evaluate(self, scopes):
        """Measure and price usage: ``{(scope key, calculator id): Measure}``.

        ``scopes``: UsageScope tuples, all with a schedule (billing) or all without
        (the readings of the device between the dates, rejected ones excluded).
        A few grouped queries for the whole set, whatever the number of scopes.
        """
        scopes = [scope for scope in scopes if scope.calculators]
        if not scopes:
            return {}
        self.env["iot.usage.bucket"].flush_model()
        self.env["iot_billing.device.event"].flush_model()
        buckets = self._scope_buckets_sql(scopes)
        calculators = {calculator for scope in scopes for calculator in scope.calculators}
        plain = self._measure_plain(buckets)
        special = {}
        for calculator in calculators:
            special.update(calculator._measure_special(buckets, scopes))
        terms = {calculator.id: calculator._terms() for calculator in calculators}
        steps = {}
        measures = {}
        for scope in scopes:
            if scope.currency not in steps:
                steps[scope.currency] = self._currency_step(scope.currency)
            for calculator in scope.calculators:
                rule = terms[calculator.id]
                reading_amount = None
                if (scope.key, calculator.id) in special:
                    quantity, count, reading_amount = special[scope.key, calculator.id]
                else:
                    values = plain.get((scope.key, calculator.metric_id.id), {})
                    quantity, count = values.get(calculator.aggregation), values.get("count", 0)
                quantity = to_decimal(quantity).quantize(QUANTITY_STEP)
                convert = scope.convert(calculator) if scope.convert else None
                amount = price_amount(
                    rule, quantity, steps[scope.currency],
                    reading_amounts=None if reading_amount is None else [reading_amount],
                    convert=convert, proration=scope.proration,
                )
                measures[scope.key, calculator.id] = Measure(
                    quantity, count or 0, billable_quantity(rule, quantity, scope.proration), amount,
                    (convert or _same_price)(rule.unit_price),
                )
        return measures

    @api.model
    def _scope_buckets_sql(self, scopes):
        """The usage buckets of the scopes as rows ``(key, id, metric_id, reading_count,
        quantity_sum, quantity_max, last_at, last_quantity, last_seq, distinct_values, quantity_counts)``."""
        columns = SQL(
            "bucket.id, bucket.metric_id, bucket.reading_count, bucket.quantity_sum, bucket.quantity_max, "
            "bucket.last_at, bucket.last_quantity, bucket.last_seq, bucket.distinct_values, bucket.quantity_counts"
        )
        if scopes[0].schedule_id:
            return SQL(
                """SELECT bucket.schedule_id AS key, %s
                     FROM iot_usage_bucket bucket
                    WHERE bucket.schedule_id = ANY(%s) AND bucket.state IN ('to_value', 'valued')
                   UNION ALL
                   SELECT late.id, %s
                     FROM iot_invoicing_schedule late
                     JOIN iot_contract contract ON contract.id = late.contract_id
                     JOIN iot_usage_bucket bucket ON bucket.contract_item_id = late.contract_item_id
                      AND bucket.state = 'invoiced' AND NOT bucket.is_late
                      AND bucket.bucket_start >= local_midnight(late.date_from, contract.tz)
                      AND bucket.bucket_start < local_midnight(late.date_to + 1, contract.tz)
                    WHERE late.id = ANY(%s)""",
                columns,
                [scope.schedule_id for scope in scopes],
                columns,
                [scope.schedule_id for scope in scopes if scope.rerate],
            )
        return SQL(
            """SELECT scope.key, %s
                 FROM (%s) AS scope
                 JOIN iot_usage_bucket bucket ON bucket.device_id = scope.device_id
                  AND bucket.bucket_start >= scope.start_at AND bucket.bucket_start < scope.stop_at
                WHERE bucket.state != 'rejected'""",
            columns,
            self._scope_bounds_sql(scopes),
        )

    @api.model
    def _scope_bounds_sql(self, scopes):
        """Rows ``(key, device_id, start_at, stop_at)``: the scopes' first and last days as UTC
        instants, from midnight to midnight in each scope's time zone."""
        return SQL(
            """SELECT scope.key, scope.device_id, local_midnight(scope.date_from, scope.tz) AS start_at,
                      local_midnight(scope.date_to + 1, scope.tz) AS stop_at
                 FROM unnest(%s::int[], %s::int[], %s::date[], %s::date[], %s::varchar[])
                      AS scope(key, device_id, date_from, date_to, tz)""",
            [scope.key for scope in scopes],
            [scope.device_id for scope in scopes],
            [scope.date_from for scope in scopes],
            [scope.date_to for scope in scopes],
            [scope.tz or "UTC" for scope in scopes],
        )

    @api.model
    def _measure_plain(self, buckets):
        """``{(key, metric id): {aggregation: value as text, "count": n}}``, one query."""
        rows = self.env.execute_query(SQL(
            "WITH bucket AS (%s) SELECT bucket.key, bucket.metric_id, %s FROM bucket"
            " GROUP BY bucket.key, bucket.metric_id",
            buckets,
            SQL(", ").join(SQL("(%s)::text", SQL(expression)) for expression in PLAIN_AGGREGATES.values()),
        ))
        names = list(PLAIN_AGGREGATES)
        return {
            (key, metric_id): dict(zip(names, values, strict=True), count=int(values[names.index("count")]))
            for key, metric_id, *values in rows
        }

    def _measure_special(self, buckets, scopes):
        """``{(key, calculator id): (quantity, count, per-reading amount or None)}`` for the rules
        whose measure needs their own parameters: events, distinct values, rounding per reading."""
        self.ensure_one()
        if self.source == "event":
            mine = [scope for scope in scopes if self in scope.calculators]
            rows = self.env.execute_query(SQL(
                """SELECT scope.key, count(event.id)
                     FROM (%s) AS scope
                     JOIN iot_billing_device_event event ON event.device_id = scope.device_id
                      AND event.event_type = %s
                      AND event.date >= scope.start_at AND event.date < scope.stop_at
                    GROUP BY scope.key""",
                self._scope_bounds_sql(mine),
                self.event_type,
            ))
            return {(key, self.id): (count, count, None) for key, count in rows}
        if self.aggregation == "count_unique":
            # The buckets keep the distinct values of the payload keys rules count.
            self._check_value_lists(buckets, SQL("NOT coalesce(bucket.distinct_values ? %s, false)", self.payload_key))
            rows = self.env.execute_query(SQL(
                """WITH bucket AS (%s)
                   SELECT bucket.key,
                          (SELECT count(DISTINCT value) FROM bucket listed,
                                  jsonb_array_elements_text(listed.distinct_values -> %s) AS value
                            WHERE listed.key = bucket.key AND listed.metric_id = %s),
                          sum(bucket.reading_count)
                     FROM bucket WHERE bucket.metric_id = %s GROUP BY bucket.key""",
                buckets, self.payload_key, self.metric_id.id, self.metric_id.id,
            ))
            return {(key, self.id): (quantity, count, None) for key, quantity, count in rows}
        if self.rounding == "reading":
            result = {}
            keys_by_terms = {}
            for scope in scopes:
                if self in scope.calculators:
                    convert = (scope.convert(self) if scope.convert else None) or _same_price
                    terms = (self._currency_step(scope.currency), convert(to_decimal(self.unit_price)))
                    keys_by_terms.setdefault(terms, set()).add(scope.key)
            # The buckets keep how many readings had each quantity.
            self._check_value_lists(buckets, SQL("bucket.quantity_counts IS NULL"))
            for (step, price), keys in keys_by_terms.items():
                rows = self.env.execute_query(SQL(
                    """WITH bucket AS (%s)
                       SELECT bucket.key, sum(bucket.quantity_sum)::text, sum(bucket.reading_count),
                              (SELECT coalesce(sum(round(counted.quantity::numeric * %s / %s) * %s
                                                   * counted.readings::bigint), 0)
                                 FROM bucket listed, jsonb_each_text(listed.quantity_counts)
                                      AS counted(quantity, readings)
                                WHERE listed.key = bucket.key AND listed.metric_id = bucket.metric_id)::text
                         FROM bucket WHERE bucket.metric_id = %s AND bucket.key = ANY(%s)
                        GROUP BY bucket.key, bucket.metric_id""",
                    buckets, price, step, step, self.metric_id.id, list(keys),
                ))
                result.update({
                    (key, self.id): (quantity, count, Decimal(amount)) for key, quantity, count, amount in rows
                })
            return result
        return {}

    def _check_value_lists(self, buckets, missing):
        """Refuse to bill a rule from buckets formed before it existed: they lack the values
        it needs (``missing``: the SQL condition of such a bucket)."""
        rows = self.env.execute_query(SQL(
            "WITH bucket AS (%s) SELECT count(*) FROM bucket WHERE bucket.metric_id = %s AND %s",
            buckets, self.metric_id.id, missing,
        ))
        if rows[0][0]:
            raise UserError(self.env._(
                "Rule %(rule)s needs values that %(count)s usage buckets of metric %(metric)s did not keep: "
                "their readings arrived before the rule existed or was active. Such usage can only be "
                "billed by the rules that were active when it arrived.",
                rule=self.name, count=rows[0][0], metric=self.metric_id.code,
            ))

    # ------------------------------------------------------------------
    # Pricing: exact Decimal arithmetic, one rounding to the currency at the end
    # ------------------------------------------------------------------
    def _terms(self):
        """The rule's pricing parameters as exact decimals, read once for a whole set of periods."""
        self.ensure_one()
        return RuleTerms(
            pricing=self.pricing,
            per_reading=self.rounding == "reading",
            unit_price=to_decimal(self.unit_price),
            included=to_decimal(self.included_quantity),
            minimum=to_decimal(self.minimum_amount),
            package_size=to_decimal(self.package_size),
            prorate=self.prorate_partial_periods,
            tiers=tuple(sorted(
                (to_decimal(t.from_quantity), to_decimal(t.unit_price), to_decimal(t.flat_fee)) for t in self.tier_ids
            )),
        )

    def _currency_step(self, currency):
        return to_decimal(currency.rounding)

    def _round_amount(self, amount, currency):
        return round_to_step(amount, self._currency_step(currency))

    def _price(self, quantity, currency, reading_amounts=None, convert=None, proration=1):
        """Amount for a period's aggregated quantity, rounded to ``currency`` (see ``price_amount``)."""
        return price_amount(
            self._terms(), quantity, self._currency_step(currency), reading_amounts, convert, proration
        )

    def _unit_label(self):
        self.ensure_one()
        if self.source == "event":
            return self.event_type
        return self.metric_id.uom_id.name or self.metric_id.code


# A rule's pricing parameters, exact (see IotUsageCalculator._terms).
RuleTerms = namedtuple("RuleTerms", "pricing per_reading unit_price included minimum package_size prorate tiers")


def _same_price(price):
    return price


def round_to_step(amount, step):
    """Round half up to a multiple of ``step`` (a currency's rounding: 0.01, 0.001, 0.05...)."""
    return (amount / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def billable_quantity(terms, quantity, proration=1):
    """Quantity after the included allowance, prorated for a partial period when the rule says so."""
    included = terms.included
    if terms.prorate:
        included = (included * to_decimal(proration)).quantize(QUANTITY_STEP, rounding=ROUND_HALF_UP)
    return max(Decimal(0), to_decimal(quantity) - included)


def price_amount(terms, quantity, step, reading_amounts=None, convert=None, proration=1):
    """Amount of a period's aggregated quantity under a rule, rounded half up to ``step``.

    ``reading_amounts``: the period's rounded per-reading amounts, used instead of the
    quantity when the rule rounds per reading. ``convert``: turns one of the rule's prices
    (unit and tier prices, tier fees, the flat amount, the minimum) into the price billed
    (fiscal position, currency); unchanged when empty. ``proration``: the share of a full
    billing period the period covers; the included quantity and the minimum follow it when
    the rule prorates partial periods.
    """
    convert = convert or _same_price
    unit_price = convert(terms.unit_price)
    billable = billable_quantity(terms, quantity, proration)
    if terms.per_reading and reading_amounts is not None:
        amount = sum(reading_amounts, Decimal(0))
    elif terms.pricing == "per_unit":
        amount = billable * unit_price
    elif terms.pricing == "package":
        amount = (billable / terms.package_size).to_integral_value(rounding=ROUND_CEILING) * unit_price
    elif terms.pricing == "flat":
        amount = unit_price if billable > 0 else Decimal(0)
    else:
        amount = _tiers_amount(terms, billable, convert)
    amount = round_to_step(amount, step)
    minimum = convert(terms.minimum)
    if terms.prorate:
        minimum *= to_decimal(proration)
    minimum = round_to_step(minimum, step)
    return max(amount, minimum) if minimum else amount


def _tiers_amount(terms, billable, convert):
    """Graduated: each tier prices the units inside it. Volume: the tier the whole
    quantity reaches prices every unit. A tier starting at N applies above N."""
    tiers = [(start, convert(price), convert(fee)) for start, price, fee in terms.tiers]
    if not tiers or billable <= 0:
        return Decimal(0)
    if terms.pricing == "volume":
        reached = [tier for tier in tiers if billable > tier[0]] or tiers[:1]
        _start, price, fee = reached[-1]
        return billable * price + fee
    amount = Decimal(0)
    for position, (start, price, fee) in enumerate(tiers):
        if billable <= start:
            break
        end = tiers[position + 1][0] if position + 1 < len(tiers) else None
        units = (min(billable, end) if end is not None else billable) - start
        amount += units * price + fee
    return amount
