from collections import namedtuple
from datetime import datetime

import pytz

from odoo import api, fields, models
from odoo.addons.iot_contract.tools import split_periods, try_lock_for_valuation
from odoo.exceptions import UserError
from odoo.tools import SQL

BUCKET_STATES = [
    ("to_value", "To value"),
    ("valued", "Valued"),
    ("invoiced", "Invoiced"),
    ("rejected", "Rejected"),
]

# Merge two buckets' value lists (see the fields distinct_values and quantity_counts).
# A key present on one side only keeps its list: it was collected there.
MERGE_FUNCTIONS_SQL = """
    CREATE OR REPLACE FUNCTION iot_merge_distinct(stored jsonb, added jsonb) RETURNS jsonb
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN stored IS NULL THEN added WHEN added IS NULL THEN stored ELSE (
            SELECT jsonb_object_agg(key, (
                SELECT coalesce(jsonb_agg(DISTINCT value ORDER BY value), '[]'::jsonb)
                  FROM (SELECT jsonb_array_elements_text(coalesce(stored -> key, '[]'::jsonb)) AS value
                        UNION
                        SELECT jsonb_array_elements_text(coalesce(added -> key, '[]'::jsonb))) AS merged))
              FROM (SELECT jsonb_object_keys(stored) AS key
                    UNION SELECT jsonb_object_keys(added)) AS keys)
        END $$;
    CREATE OR REPLACE FUNCTION iot_merge_counts(stored jsonb, added jsonb) RETURNS jsonb
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN stored IS NULL THEN added WHEN added IS NULL THEN stored ELSE (
            SELECT jsonb_object_agg(quantity, total)
              FROM (SELECT quantity, sum(count::bigint) AS total
                      FROM (SELECT * FROM jsonb_each_text(stored) UNION ALL SELECT * FROM jsonb_each_text(added))
                           AS counted(quantity, count)
                     GROUP BY quantity) AS summed)
        END $$;
    CREATE OR REPLACE AGGREGATE iot_merge_distinct_agg(jsonb) (SFUNC = iot_merge_distinct, STYPE = jsonb);
    CREATE OR REPLACE AGGREGATE iot_merge_counts_agg(jsonb) (SFUNC = iot_merge_counts, STYPE = jsonb);
"""


# Interval lengths, in seconds: a contract's time zone must keep its midnights on the grid.
INTERVAL_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}



def misaligned_zones(zones, interval):
    """The time zones among ``zones`` whose midnights fall inside an ``interval``-long bucket
    (aligned on UTC) at some time of this year or the next: their periods would split buckets."""
    step = INTERVAL_SECONDS[interval]
    year = datetime.now().year
    moments = [datetime(year + offset, month, 1, 12) for offset in (0, 1) for month in range(1, 13)]
    bad = set()
    for zone in zones:
        try:
            tzinfo = pytz.timezone(zone)
        except pytz.UnknownTimeZoneError:
            continue  # the contract refuses unknown zones itself
        if any(tzinfo.utcoffset(moment).total_seconds() % step for moment in moments):
            bad.add(zone)
    return bad


# How the parts of one bucket add up: the readings of a batch, a batch and the bucket already
# stored, the buckets of one interval that several writers filled. The one statement of the
# merge rule: every query that adds usage to buckets renders it, as aggregates over many parts
# (merged_aggregates) or as the update of a stored bucket by one more part (merged_pair).
# first/last: the part whose first (last) reading comes first (last), by timestamp, then by
# first_seq (last_seq), the raw reading id, which orders readings of equal timestamps as they
# were stored. distinct/counts: the value lists (see the fields distinct_values, quantity_counts).
MERGE_RULE = (
    ("reading_count", "sum"),
    ("quantity_sum", "sum"),
    ("quantity_min", "min"),
    ("quantity_max", "max"),
    ("first_at", "first"),
    ("first_quantity", "first"),
    ("first_seq", "first"),
    ("last_at", "last"),
    ("last_quantity", "last"),
    ("last_seq", "last"),
    ("distinct_values", "distinct"),
    ("quantity_counts", "counts"),
)
_ORDER_KEYS = {"first": ("first_at", "first_seq"), "last": ("last_at", "last_seq")}
_LIST_MERGES = {"distinct": ("iot_merge_distinct", "iot_merge_distinct_agg"),
                "counts": ("iot_merge_counts", "iot_merge_counts_agg")}
# What identifies a bucket, then what the merge rule adds up: the columns every source of
# usage fills (readings as they arrive, gateway aggregates).
KEY_COLUMNS = ("company_id", "device_id", "metric_id", "bucket_start", "bucket_stop")
BUCKET_COLUMNS = SQL(", ").join(SQL.identifier(column) for column in KEY_COLUMNS + tuple(c for c, _k in MERGE_RULE))


def merged_aggregates(sources=None, lists=True):
    """The merge rule as aggregates over the parts of each group, one ``AS <column>`` each.

    ``sources``: the SQL expression of a column in the parts, when it is not the column
    itself (readings are parts of one reading: a count of 1, their quantity, timestamp and
    id). ``lists``: with the value lists (readings have none: they are collected apart).
    """
    sources = sources or {}

    def source(column):
        return sources.get(column) or SQL.identifier(column)

    terms = []
    for column, kind in MERGE_RULE:
        if kind in ("sum", "min", "max"):
            term = SQL("%s(%s)", SQL(kind), source(column))
        elif kind in _ORDER_KEYS:
            direction = SQL(" DESC") if kind == "last" else SQL()
            term = SQL("(array_agg(%s ORDER BY %s))[1]", source(column), SQL(", ").join(
                SQL("%s%s", source(key), direction) for key in _ORDER_KEYS[kind]))
        elif not lists:
            continue
        else:
            term = SQL("%s(%s)", SQL(_LIST_MERGES[kind][1]), source(column))
        terms.append(SQL("%s AS %s", term, SQL.identifier(column)))
    return SQL(", ").join(terms)


def merged_pair(stored, added):
    """The merge rule as the ``SET`` list of an update of bucket ``stored`` by one more part
    ``added`` (table names). A list the part does not bring (NULL) stays as it was."""

    def col(table, column):
        return SQL.identifier(table, column)

    terms = []
    for column, kind in MERGE_RULE:
        old, new = col(stored, column), col(added, column)
        if kind == "sum":
            term = SQL("%s + %s", old, new)
        elif kind in ("min", "max"):
            term = SQL("%s(%s, %s)", SQL("least" if kind == "min" else "greatest"), old, new)
        elif kind in _ORDER_KEYS:
            keys = _ORDER_KEYS[kind]
            # The added part wins when its key sorts before (first) or, on a tie, after (last).
            term = SQL(
                "CASE WHEN (%s) %s (%s) THEN %s ELSE %s END",
                SQL(", ").join(col(added, key) for key in keys), SQL("<" if kind == "first" else ">="),
                SQL(", ").join(col(stored, key) for key in keys), new, old,
            )
        else:
            term = SQL("CASE WHEN %s IS NULL THEN %s ELSE %s(%s, %s) END",
                       new, old, SQL(_LIST_MERGES[kind][0]), old, new)
        terms.append(SQL("%s = %s", SQL.identifier(column), term))
    return SQL(",\n            ").join(terms)


# Adding to the open bucket of an interval. Each database connection adds to buckets of its
# own (writer): two transactions running at the same time never update the same row, so
# concurrent batches neither wait for each other nor fail to serialize (Odoo runs them in
# REPEATABLE READ, where updating a row another transaction changed meanwhile is an error).
# An interval has at most one open bucket per connection that wrote to it; billing adds them
# up like any other buckets of the period.
def upsert_buckets(partial):
    """The CTE adding the rows of the CTE ``partial`` (BUCKET_COLUMNS, one per bucket) to
    their buckets."""
    return SQL(
        """
            bucketed AS (
                INSERT INTO iot_usage_bucket (%(columns)s, writer, state, is_late)
                SELECT %(columns)s, pg_backend_pid(), 'to_value', false
                  FROM %(partial)s ORDER BY device_id, metric_id, bucket_start
                ON CONFLICT (device_id, metric_id, bucket_start, writer) WHERE state = 'to_value' DO UPDATE SET
                    %(merged)s
            )
        """,
        columns=BUCKET_COLUMNS, partial=SQL.identifier(partial), merged=_UPSERT_MERGE,
    )


_UPSERT_MERGE = merged_pair("iot_usage_bucket", "excluded")
# Buckets are parts too: the compaction and the gateway aggregates merge them.
BUCKETS_MERGE = merged_aggregates()
# A reading is a part of one reading: its bucket figures are its quantity, timestamp and id.
_READINGS_MERGE = merged_aggregates({
    "reading_count": SQL("1"),
    **dict.fromkeys(("quantity_sum", "quantity_min", "quantity_max", "first_quantity", "last_quantity"),
                    SQL.identifier("quantity")),
    **dict.fromkeys(("first_at", "last_at"), SQL.identifier("timestamp")),
    **dict.fromkeys(("first_seq", "last_seq"), SQL.identifier("id")),
}, lists=False)

# Which value lists ingestion keeps, from the active rules: payload keys whose distinct
# values a rule counts (per metric), metrics whose amounts a rule rounds per reading.
ValueLists = namedtuple("ValueLists", "distinct_metric_ids distinct_keys rounding_metric_ids")


class IotUsageBucket(models.Model):
    """Usage of one device and metric over one interval (minute, hour or day, the metric's):
    what every billing aggregation needs, kept as readings arrive (``iot.usage._insert_readings``).

    Billing reads buckets, never raw readings, which live only for a retention window.
    A bucket being valued or already invoiced is not changed any more: readings that arrive
    late for its interval form a new bucket of the same interval, billed by the item's next
    open period (``is_late``), as late readings were.
    """

    _name = "iot.usage.bucket"
    _description = "IoT Usage Bucket"
    _order = "bucket_start desc, id desc"
    # Written by ingestion at IoT volume: no create/write user and date (as on iot.usage).
    _log_access = False

    company_id = fields.Many2one("res.company", required=True)
    device_id = fields.Many2one("iot_billing.device", required=True, ondelete="restrict")
    metric_id = fields.Many2one("iot.usage.metric", required=True, ondelete="restrict")
    bucket_start = fields.Datetime(required=True, string="From", help="Start of the interval (UTC, included).")
    bucket_stop = fields.Datetime(required=True, string="To", help="End of the interval (UTC, excluded).")
    reading_count = fields.Integer(string="Readings", aggregator="sum")
    quantity_sum = fields.Float(string="Sum", digits=(32, 6), aggregator="sum")
    quantity_min = fields.Float(string="Minimum", digits=(32, 6), aggregator="min")
    quantity_max = fields.Float(string="Maximum", digits=(32, 6), aggregator="max")
    first_at = fields.Datetime(string="First reading at")
    first_quantity = fields.Float(digits=(32, 6), aggregator=None)
    last_at = fields.Datetime(string="Last reading at")
    last_quantity = fields.Float(digits=(32, 6), aggregator=None)
    # Only for metrics that a rule needs them for (see _value_lists_wanted), bounded by the
    # bucket's reading count: the distinct payload values per key (count of distinct values)
    # and how many readings had each quantity (amounts rounded per reading).
    distinct_values = fields.Json(
        help="Distinct payload values per payload key, for 'count distinct' usage calculators.")
    quantity_counts = fields.Json(help="Readings per quantity, for usage calculators rounding each reading's amount.")
    state = fields.Selection(BUCKET_STATES, required=True, default="to_value")
    schedule_id = fields.Many2one("iot.invoicing.schedule", index="btree_not_null", ondelete="set null")
    contract_item_id = fields.Many2one("iot.contract.item", index="btree_not_null", ondelete="set null")
    is_late = fields.Boolean(
        help="Received after its interval's period was valued or invoiced: billed on the item's next open period."
    )
    reject_reason = fields.Char()
    writer = fields.Integer(
        readonly=True, aggregator=None,
        help="The database connection that added to this bucket (see upsert_buckets).",
    )

    def init(self):
        self.env.cr.execute(MERGE_FUNCTIONS_SQL)
        # Arrival order of the first and last readings (raw ids, which outgrow an integer):
        # plain columns, the ORM has no 64-bit integer field.
        self.env.cr.execute(
            """
            ALTER TABLE iot_usage_bucket ADD COLUMN IF NOT EXISTS first_seq bigint,
                                         ADD COLUMN IF NOT EXISTS last_seq bigint
            """
        )
        # The bucket readings are added to: one per device, metric, interval and writing
        # connection still to value. Billing reads a device's buckets of a period, the Usage
        # Analysis a recent window, late-usage planning and orphan rejection the buckets still
        # to value of a company. No index on the state alone: every insert would pay for it.
        self.env.cr.execute(
            """
            DROP INDEX IF EXISTS iot_usage_bucket_open_uniq;
            CREATE UNIQUE INDEX IF NOT EXISTS iot_usage_bucket_open_writer_uniq
                ON iot_usage_bucket (device_id, metric_id, bucket_start, writer) WHERE state = 'to_value';
            CREATE INDEX IF NOT EXISTS iot_usage_bucket_device_start_idx
                ON iot_usage_bucket (device_id, bucket_start);
            CREATE INDEX IF NOT EXISTS iot_usage_bucket_start_idx ON iot_usage_bucket (bucket_start);
            CREATE INDEX IF NOT EXISTS iot_usage_bucket_to_value_idx
                ON iot_usage_bucket (company_id, bucket_start) WHERE state = 'to_value';
            CREATE INDEX IF NOT EXISTS iot_usage_bucket_rejected_idx
                ON iot_usage_bucket (bucket_start) WHERE state = 'rejected';
            """
        )
        # Adding to a bucket rewrites its row: room on the page keeps the new version there
        # (a HOT update, no new index entries; the added-up columns are not indexed).
        self.env.cr.execute("ALTER TABLE iot_usage_bucket SET (fillfactor = 70)")

    # ------------------------------------------------------------------
    # Ingestion: readings and gateway aggregates added as they arrive
    # ------------------------------------------------------------------
    @api.model
    def _value_lists_wanted(self, metric_ids):
        """The value lists the active rules need for these metrics (see ValueLists)."""
        rows = self.env.execute_query(SQL(
            """SELECT DISTINCT metric_id, aggregation, payload_key, rounding FROM iot_usage_calculator
                WHERE active AND source = 'usage' AND metric_id = ANY(%s)
                  AND (aggregation = 'count_unique' OR rounding = 'reading')""",
            list(metric_ids),
        ))
        distinct = sorted({(metric_id, key) for metric_id, aggregation, key, _r in rows
                           if aggregation == "count_unique" and key})
        return ValueLists(
            [metric_id for metric_id, _key in distinct],
            [key for _metric_id, key in distinct],
            sorted({metric_id for metric_id, _a, _k, rounding in rows if rounding == "reading"}),
        )

    @api.model
    def _aggregate_readings_sql(self, readings, value_lists):
        """CTEs (after a ``WITH readings AS (...),``) adding the rows of the CTE ``readings``
        (id, device_id, company_id, metric_id, quantity, timestamp, payload) to their buckets."""
        parts = [SQL(
            """
            placed AS (
                SELECT reading.*, date_trunc(metric.bucket_interval, reading.timestamp) AS bucket_start,
                       ('1 ' || metric.bucket_interval)::interval AS bucket_length
                  FROM %(readings)s reading JOIN iot_usage_metric metric ON metric.id = reading.metric_id
            ),
            summary AS (
                SELECT company_id, device_id, metric_id, bucket_start, bucket_start + bucket_length AS bucket_stop,
                       %(merged)s
                  FROM placed
                 GROUP BY company_id, device_id, metric_id, bucket_start, bucket_length
            ),
            """,
            readings=SQL.identifier(readings), merged=_READINGS_MERGE,
        )]
        distinct_sql, distinct_join = SQL("NULL::jsonb"), SQL()
        if value_lists.distinct_keys:
            parts.append(SQL(
                """
            wanted_key AS (
                SELECT * FROM unnest(%s::int[], %s::varchar[]) AS wanted(metric_id, key)
            ),
            collected AS (
                SELECT placed.device_id, placed.metric_id, placed.bucket_start, wanted_key.key,
                       coalesce(jsonb_agg(DISTINCT placed.payload ->> wanted_key.key
                                          ORDER BY placed.payload ->> wanted_key.key)
                                FILTER (WHERE placed.payload ->> wanted_key.key IS NOT NULL), '[]') AS found
                  FROM placed JOIN wanted_key ON wanted_key.metric_id = placed.metric_id
                 GROUP BY placed.device_id, placed.metric_id, placed.bucket_start, wanted_key.key
            ),
            distinct_list AS (
                SELECT device_id, metric_id, bucket_start, jsonb_object_agg(key, found) AS found
                  FROM collected GROUP BY device_id, metric_id, bucket_start
            ),
            """,
                value_lists.distinct_metric_ids, value_lists.distinct_keys,
            ))
            distinct_sql = SQL("distinct_list.found")
            distinct_join = SQL("LEFT JOIN distinct_list USING (device_id, metric_id, bucket_start)")
        counts_sql, counts_join = SQL("NULL::jsonb"), SQL()
        if value_lists.rounding_metric_ids:
            parts.append(SQL(
                """
            quantity_count AS (
                SELECT device_id, metric_id, bucket_start, jsonb_object_agg(quantity, readings) AS found
                  FROM (SELECT device_id, metric_id, bucket_start, round(quantity, 6)::text AS quantity,
                               count(*) AS readings
                          FROM placed WHERE metric_id = ANY(%s)
                         GROUP BY device_id, metric_id, bucket_start, round(quantity, 6)) AS counted
                 GROUP BY device_id, metric_id, bucket_start
            ),
            """,
                value_lists.rounding_metric_ids,
            ))
            counts_sql = SQL("quantity_count.found")
            counts_join = SQL("LEFT JOIN quantity_count USING (device_id, metric_id, bucket_start)")
        parts.append(SQL(
            """
            partial AS (
                SELECT summary.*, %s AS distinct_values, %s AS quantity_counts
                  FROM summary
                  %s
                  %s
            ),
            """,
            distinct_sql, counts_sql, distinct_join, counts_join,
        ))
        parts.append(upsert_buckets("partial"))
        return SQL().join(parts)

    @api.model
    def _upsert_sql(self, partial):
        """The CTE adding the rows of the CTE ``partial`` (BUCKET_COLUMNS, one per bucket) to their buckets."""
        return upsert_buckets(partial)

    # ------------------------------------------------------------------
    # Billing: buckets follow the schedules that value them
    # ------------------------------------------------------------------
    @api.model
    def _assign_to_schedules(self, schedules):
        """Give each bucket still to value of these (due) schedules' devices its schedule."""
        self.flush_model()
        schedules.flush_model()
        self.env.cr.execute(ASSIGN_BUCKETS_SQL, {"schedule_ids": schedules.ids})
        self.invalidate_model(["schedule_id", "contract_item_id", "is_late", "state"])

    @api.model
    def _mark_invoiced(self, schedules):
        """The buckets valued for ``schedules`` were invoiced with them."""
        self.flush_model()
        self.env.execute_query(SQL(
            "UPDATE iot_usage_bucket SET state = 'invoiced' WHERE schedule_id = ANY(%s) AND state = 'valued'",
            schedules.ids,
        ))
        self.invalidate_model(["state"])

    @api.model
    def _release_for_schedules(self, schedules, from_states=("valued", "invoiced")):
        """The periods of ``schedules`` are cancelled or billed again (their invoice was
        undone): their buckets go back to be valued, detached, and the valuations forget the
        invoice lines they were on."""
        self._reopen_for_schedules(schedules, from_states)
        Valuation = self.env["iot.usage.valuation"]
        Valuation.flush_model(["move_line_id"])
        self.env.execute_query(SQL(
            "UPDATE iot_usage_valuation SET move_line_id = NULL WHERE schedule_id = ANY(%s)", schedules.ids,
        ))
        Valuation.invalidate_model(["move_line_id"])
        schedules.invalidate_recordset(["invoice_line_ids"])

    @api.model
    def _reopen_for_schedules(self, schedules, from_states):
        """The buckets of ``schedules`` in ``from_states`` wait for another schedule."""
        self.flush_model()
        bucket_ids = [row[0] for row in self.env.execute_query(SQL(
            "SELECT id FROM iot_usage_bucket WHERE schedule_id = ANY(%s) AND state IN %s",
            schedules.ids, tuple(from_states),
        ))]
        self.browse(bucket_ids)._reopen()

    @api.model
    def _plan_late_usage(self, company, before):
        """Periods ``{(item id, date_from): date_to}`` of usage older than ``before`` measured
        in an item that has no open usage period left (its last period was invoiced: term ended,
        terminated). A late-usage schedule re-rates such a period with it and bills the
        difference (``iot.usage.valuation._value_schedules``). Usage an open period can
        still take waits for it (billed there as late usage)."""
        self.flush_model()
        self.env["iot.invoicing.schedule"].flush_model()
        self.env["iot.contract.item"].flush_model()
        # Only an item whose term has ended can have no open period left; among those, the
        # ones still holding a planned usage period are not closed. Three small queries rather
        # than one join, whose plan goes wrong right after a large activation (no statistics).
        ended = self.env.execute_query(SQL(
            """
            SELECT item.id, item.device_id, item.date_start, item.date_end, item.billing_period,
                   coalesce(contract.tz, 'UTC'), item.cycle_anchor
              FROM iot_contract_item item
              JOIN iot_contract contract ON contract.id = item.contract_id
             WHERE item.company_id = %s AND item.device_id IS NOT NULL AND contract.state != 'draft'
               AND item.date_end <= %s
            """,
            company.id, before,
        ))
        if not ended:
            return {}
        still_open = {
            item_id for (item_id,) in self.env.execute_query(SQL(
                """SELECT DISTINCT contract_item_id FROM iot_invoicing_schedule
                    WHERE contract_item_id = ANY(%s) AND state = 'planned' AND part != 'fee'""",
                [row[0] for row in ended],
            ))
        }
        closed = [row for row in ended if row[0] not in still_open]
        if not closed:
            return {}
        rows = self.env.execute_query(SQL(
            """
            SELECT DISTINCT item.id, item.date_start, item.date_end, item.billing_period, item.cycle_anchor,
                   (bucket.bucket_start AT TIME ZONE 'UTC' AT TIME ZONE item.tz)::date
              FROM unnest(%s::int[], %s::int[], %s::date[], %s::date[], %s::varchar[], %s::varchar[],
                          %s::date[])
                   AS item(id, device_id, date_start, date_end, billing_period, tz, cycle_anchor)
              JOIN iot_usage_bucket bucket ON bucket.device_id = item.device_id
               AND bucket.state = 'to_value' AND bucket.bucket_start < %s
               AND bucket.bucket_start >= local_midnight(item.date_start, item.tz)
               AND bucket.bucket_start < local_midnight(item.date_end + 1, item.tz)
            """,
            *([row[column] for row in closed] for column in range(7)),
            before,
        ))
        periods = {}
        for item_id, date_start, date_end, billing_period, anchor, day in rows:
            for date_from, date_to, _start, _end in split_periods(date_start, date_end, billing_period, anchor):
                if date_from <= day <= date_to:
                    periods[item_id, date_from] = date_to
                    break
        return periods

    @api.model
    def _plan_late_events(self, company, since):
        """Periods already invoiced that hold more events counted as usage than they billed
        (devices with events created since ``since``, the previous run's start):
        ``{(item id, date_from): date_to}``."""
        event_types = self.env["iot.usage.calculator"].search([("source", "=", "event")]).mapped("event_type")
        if not event_types:
            return {}
        self.env["iot_billing.device.event"].flush_model()
        # A period billed fewer of a rule's events than it now holds received events late. Only
        # devices with events created since the previous run are looked at.
        rows = self.env.execute_query(SQL(
            """
            WITH recent AS (
                SELECT DISTINCT event.device_id, event.event_type
                  FROM iot_billing_device_event event
                 WHERE event.company_id = %s AND event.event_type = ANY(%s) AND event.create_date >= %s
            )
            SELECT schedule.contract_item_id, schedule.date_from, schedule.date_to
              FROM recent
              JOIN iot_invoicing_schedule schedule ON schedule.device_id = recent.device_id
               AND schedule.state = 'invoiced' AND schedule.part != 'fee'
              JOIN iot_contract contract ON contract.id = schedule.contract_id
              JOIN iot_usage_valuation valuation ON valuation.schedule_id = schedule.id
              JOIN iot_usage_calculator rule ON rule.id = valuation.calculator_id
               AND rule.source = 'event' AND rule.event_type = recent.event_type
             WHERE NOT EXISTS (
                   SELECT 1 FROM iot_invoicing_schedule pending
                    WHERE pending.contract_item_id = schedule.contract_item_id AND pending.part = 'late'
                      AND pending.state = 'planned' AND pending.date_from = schedule.date_from)
             GROUP BY schedule.contract_item_id, schedule.date_from, schedule.date_to, contract.tz,
                      recent.device_id, recent.event_type
            HAVING max(valuation.reading_count) < (
                   SELECT count(*) FROM iot_billing_device_event event
                    WHERE event.device_id = recent.device_id AND event.event_type = recent.event_type
                      AND event.date >= local_midnight(schedule.date_from, contract.tz)
                      AND event.date < local_midnight(schedule.date_to + 1, contract.tz))
            """,
            company.id, event_types, since,
        ))
        return {(item_id, date_from): date_to for item_id, date_from, date_to in rows}

    @api.model
    def _plan_late(self, company, before, since):
        """Late-usage schedules, due at ``before``, for late readings and late events."""
        periods = self._plan_late_usage(company, before)
        periods.update(self._plan_late_events(company, since))
        return self.env["iot.invoicing.schedule"]._iot_insert_schedules([
            {"contract_item_id": item_id, "date_from": date_from, "date_to": date_to,
             "invoice_date": before, "part": "late", "fixed_amount": 0.0}
            for (item_id, date_from), date_to in periods.items()
        ])

    @api.model
    def _reject_orphans(self, company, before):
        """Usage older than ``before`` that no contract item covers is rejected, with the
        reason, so that it shows up for re-processing instead of waiting forever."""
        self.flush_model()
        self.env.cr.execute(
            """
            UPDATE iot_usage_bucket bucket
               SET state = 'rejected', reject_reason = 'outside any active contract item'
             WHERE bucket.state = 'to_value' AND bucket.company_id = %s AND bucket.bucket_start < %s
               AND NOT EXISTS (
                   SELECT 1 FROM iot_contract_item item
                     JOIN iot_contract contract ON contract.id = item.contract_id
                    WHERE item.device_id = bucket.device_id
                      AND bucket.bucket_start >= local_midnight(item.date_start, contract.tz)
                      AND (item.date_end IS NULL
                           OR bucket.bucket_start < local_midnight(item.date_end + 1, contract.tz)))
            """,
            (company.id, before),
        )
        count = self.env.cr.rowcount
        self.invalidate_model(["state", "reject_reason"])
        return count

    @api.model
    def _cron_compact(self, chunk=20000):
        """Merge the buckets of one interval that several connections wrote (see upsert_buckets)
        once the interval is over: an interval keeps one bucket per billing state. One chunk of
        intervals per call; the cron runs again at once while some are left (progress API).
        A company being billed is left for the next call: merging takes the company's lock the
        valuation takes (``iot_contract/tools/locks.py``), so that a billing run never
        meets a bucket being merged."""
        self.flush_model()
        companies = [company_id for company_id in self.env["res.company"].sudo().search([]).ids
                     if try_lock_for_valuation(self.env.cr, company_id)]
        self.env.cr.execute(compact_buckets(
            fields.Datetime.subtract(fields.Datetime.now(), hours=1), chunk, companies))
        merged = self.env.cr.rowcount
        self.invalidate_model()
        self.env["ir.cron"]._notify_progress(done=merged, remaining=int(merged == chunk))
        return merged

    def action_reprocess(self):
        """Rejected buckets (no contract item covered them) are valued again at the next
        billing run, e.g. after the device was activated on a contract."""
        rejected = self.filtered(lambda bucket: bucket.state == "rejected")
        if not rejected:
            raise UserError(self.env._("Select rejected usage to re-process."))
        rejected._reopen()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("%s usage buckets will be valued at the next billing run.", len(rejected)),
                "type": "info",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    def _reopen(self):
        """Back to 'to value', detached from any schedule (see REOPEN_BUCKETS_SQL)."""
        if not self:
            return
        self.flush_model()
        self.env.execute_query(SQL(REOPEN_BUCKETS_SQL, self.ids))
        self.invalidate_model()


# Buckets are assigned to the schedule whose period holds their interval (buckets never
# straddle a period boundary: see iot.usage.metric.bucket_interval); one whose period was
# already invoiced goes to the item's next open schedule. They are marked valued in the same
# statement; the valuation that follows runs in the same transaction, so a failure rolls
# both back. The due schedules drive the join (materialized first) so that PostgreSQL looks
# up each device's buckets by index. Periods begin and end at midnight in the contract's
# time zone (local_midnight, see iot.usage init).
ASSIGN_BUCKETS_SQL = """
    WITH due AS MATERIALIZED (
        SELECT schedule.id, schedule.device_id, schedule.contract_item_id, contract.tz,
               local_midnight(schedule.date_from, contract.tz) AS starts,
               local_midnight(schedule.date_to + 1, contract.tz) AS stops,
               local_midnight(item.date_start, contract.tz) AS item_starts,
               local_midnight(item.date_end + 1, contract.tz) AS item_stops
          FROM unnest(%(schedule_ids)s::int[]) AS due_id(id)
          JOIN iot_invoicing_schedule schedule ON schedule.id = due_id.id
          JOIN iot_contract_item item ON item.id = schedule.contract_item_id
          JOIN iot_contract contract ON contract.id = schedule.contract_id
         WHERE schedule.device_id IS NOT NULL AND schedule.part != 'fee'
    ),
    candidate AS (
        SELECT DISTINCT ON (bucket.id)
               bucket.id AS bucket_id, due.id AS schedule_id, due.contract_item_id,
               bucket.bucket_start < due.starts AS is_late
          FROM due
          JOIN iot_usage_bucket bucket ON bucket.device_id = due.device_id
         WHERE bucket.state = 'to_value'
           AND bucket.bucket_start >= due.item_starts
           AND (due.item_stops IS NULL OR bucket.bucket_start < due.item_stops)
           AND bucket.bucket_start < due.stops
           AND (bucket.bucket_start >= due.starts
                OR NOT EXISTS (
                    SELECT 1 FROM iot_invoicing_schedule open_period
                     WHERE open_period.contract_item_id = due.contract_item_id
                       AND open_period.state = 'planned' AND open_period.part != 'fee'
                       AND open_period.id <> due.id
                       AND bucket.bucket_start >= local_midnight(open_period.date_from, due.tz)
                       AND bucket.bucket_start < local_midnight(open_period.date_to + 1, due.tz)))
         ORDER BY bucket.id, due.starts
    )
    UPDATE iot_usage_bucket bucket
       SET schedule_id = candidate.schedule_id,
           contract_item_id = candidate.contract_item_id,
           is_late = candidate.is_late,
           state = 'valued'
      FROM candidate
     WHERE bucket.id = candidate.bucket_id
"""

# Reopened buckets belong to no connection any more (writer NULL: a unique index treats NULLs
# as distinct), so they never collide with a bucket still open for their interval, nor with
# each other; ingestion adds to its own writer's bucket, and the merge cron folds them
# together once the interval is over.
REOPEN_BUCKETS_SQL = """
    UPDATE iot_usage_bucket
       SET state = 'to_value', schedule_id = NULL, contract_item_id = NULL, is_late = false,
           reject_reason = NULL, writer = NULL
     WHERE id = ANY(%s) AND state != 'to_value'
"""

# Buckets of one closed interval in the same state (same schedule, lateness and reason) are
# merged into one: the figures add up exactly as billing adds them up. Rows another
# transaction holds (being valued, a late reading being added) are skipped this time.
def compact_buckets(closed_before, chunk, company_ids):
    """The statement merging ``chunk`` intervals' buckets (see above)."""
    return SQL(
        """
        WITH interval_state AS (
            SELECT device_id, metric_id, bucket_start, state, schedule_id, is_late
              FROM iot_usage_bucket
             WHERE bucket_stop <= %(closed_before)s AND company_id = ANY(%(company_ids)s)
             GROUP BY device_id, metric_id, bucket_start, state, schedule_id, is_late
            HAVING count(*) > 1
             LIMIT %(chunk)s
        ),
        taken AS (
            SELECT bucket.id
              FROM iot_usage_bucket bucket
              JOIN interval_state USING (device_id, metric_id, bucket_start, state, is_late)
             WHERE bucket.schedule_id IS NOT DISTINCT FROM interval_state.schedule_id
               FOR UPDATE OF bucket SKIP LOCKED
        ),
        removed AS (
            DELETE FROM iot_usage_bucket bucket USING taken WHERE bucket.id = taken.id RETURNING bucket.*
        )
        INSERT INTO iot_usage_bucket (%(columns)s, writer, state, schedule_id, contract_item_id,
                                      is_late, reject_reason)
        SELECT company_id, device_id, metric_id, bucket_start, bucket_stop, %(merged)s,
               min(writer), state, schedule_id, min(contract_item_id), is_late, min(reject_reason)
          FROM removed
         GROUP BY company_id, device_id, metric_id, bucket_start, bucket_stop, state, schedule_id, is_late
        """,
        closed_before=closed_before, company_ids=company_ids, chunk=chunk,
        columns=BUCKET_COLUMNS, merged=BUCKETS_MERGE,
    )
