import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.addons.iot_device.tools import (
    ApiInputError,
    check_batch,
    optional_payload,
    parse_utc_timestamp,
    require_entry,
    require_identifier,
    require_text,
)
from odoo.tools import SQL

from ..tools import create_key_table, create_partitioned_table, ensure_partitions
from .iot_usage_bucket import BUCKETS_MERGE

# Quantities are stored exactly with this many decimals (numeric column).
QUANTITY_DIGITS = 6
QUANTITY_STEP = Decimal(1).scaleb(-QUANTITY_DIGITS)
# numeric(20, 6) keeps 14 integer digits; a larger reading is a device error.
MAX_QUANTITY = Decimal("1e14")
SOURCES = [("api", "API"), ("mqtt", "MQTT"), ("import", "Import"), ("manual", "Manual")]

def parse_quantity(value, name="quantity", limit=MAX_QUANTITY):
    """A reading's quantity as an exact Decimal, from a JSON number or a decimal string."""
    if isinstance(value, bool) or value is None:
        raise ApiInputError("'%s' must be a number or a decimal string" % name)
    if isinstance(value, float):
        value = repr(value)  # the shortest text that round-trips: 0.1 stays 0.1
    if isinstance(value, int):
        if value >= limit:  # also spares str() of a 5,000-digit integer (ValueError)
            raise ApiInputError("%s is too large (limit %s)" % (name, limit))
        value = str(value)
    if not isinstance(value, str):
        raise ApiInputError("'%s' must be a number or a decimal string" % name)
    try:
        quantity = Decimal(value.strip())
    except InvalidOperation:
        raise ApiInputError("%s %r is not a number" % (name, value[:40])) from None
    if not quantity.is_finite():
        raise ApiInputError("%s %r is not finite" % (name, value[:40]))
    if quantity < 0:
        raise ApiInputError("%s %s is negative" % (name, value[:40]))
    if quantity >= limit:
        raise ApiInputError("%s %s is too large (limit %s)" % (name, value[:40], limit))
    return quantity.quantize(QUANTITY_STEP, rounding=ROUND_HALF_UP)


def bucket_start(moment, interval):
    """The start of the ``interval`` (minute, hour, day; UTC grid) holding ``moment``."""
    if interval == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


class IotUsage(models.Model):
    _name = "iot.usage"
    _description = "IoT Usage Reading"
    _order = "timestamp desc, id desc"
    _rec_name = "message_id"
    # No create/write user and date: four columns more on every raw reading, which says
    # what they would: when it arrived is received_at; who sent it, its source.
    _log_access = False

    # Indexed by the composite indexes below (device first), not on its own.
    device_id = fields.Many2one("iot_billing.device", ondelete="restrict")
    # No index of its own: every query of the raw table reads a device's readings or a
    # time window (the multi-company rule's condition is checked on those rows).
    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    metric_id = fields.Many2one("iot.usage.metric", ondelete="restrict")
    quantity = fields.Float(digits=(20, QUANTITY_DIGITS))
    # The partition key: rows live in one table per UTC day of the timestamp.
    timestamp = fields.Datetime(required=True, help="When the device measured it (UTC).")
    received_at = fields.Datetime(default=fields.Datetime.now)
    message_id = fields.Char(
        string="Message ID", help="Idempotency key, unique per device (and timestamp, see README)."
    )
    source = fields.Selection(SOURCES, required=True, default="manual")
    payload = fields.Json(help="Extra keys a platform sent with the reading.")
    # Billing reads the usage buckets (iot.usage.bucket), filled as readings arrive; raw
    # readings are what was received, kept for audits and disputes for the retention window
    # (iot.usage.archive). Input refused at ingestion is not a reading: iot.usage.reject.

    # A unique constraint of a partitioned table must hold the partition key: a message
    # id is unique per device and timestamp. A redelivered message (same id, same
    # timestamp) lands in the same day's partition and is a duplicate (README, Raw readings).
    _sql_constraints = [
        (
            "device_message_unique",
            "unique(device_id, message_id, timestamp)",
            "This device already sent a reading with this message ID at this time.",
        ),
    ]

    def _auto_init(self):
        # Raw readings live in daily partitions (tools/partitions.py): the parent table is
        # created here, partitioned; the ORM then adds the columns, constraints and indexes
        # as for any table. It leaves out foreign keys on a table that is not ordinary
        # (Many2one.update_db_foreign_key), and none are added: every raw reading has its
        # bucket, whose foreign keys keep devices, metrics and companies in use; an insert
        # checks three keys fewer, and attaching a partition locks no other table.
        create_partitioned_table(self.env.cr, self._description)
        return super()._auto_init()

    def init(self):
        # The UTC instant a local day begins: billing periods are days of the contract's
        # time zone, readings are stored in UTC.
        self.env.cr.execute(
            """
            CREATE OR REPLACE FUNCTION local_midnight(day date, zone varchar) RETURNS timestamp
                LANGUAGE sql STABLE PARALLEL SAFE
                AS $$ SELECT (day::timestamp AT TIME ZONE coalesce(zone, 'UTC')) AT TIME ZONE 'UTC' $$
            """
        )
        # Users look up one device's readings of one metric over a period; the Readings list
        # opens on a recent window, newest first: the timestamp index serves it (and the
        # window prunes to a few partitions).
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS iot_usage_device_metric_timestamp_idx
                ON iot_usage (device_id, metric_id, timestamp);
            CREATE INDEX IF NOT EXISTS iot_usage_timestamp_idx ON iot_usage (timestamp);
            """
        )
        create_key_table(self.env.cr)
        # A partition for today and the days the rotation cron prepares ahead.
        today = fields.Date.context_today(self)
        ensure_partitions(self.env.cr, [today + datetime.timedelta(days=offset) for offset in range(-1, 8)])

    @api.model_create_multi
    def create(self, vals_list):
        # The ORM's insert (manual readings, demo data) needs the partitions of its days.
        self._prepare_partitions(
            fields.Datetime.to_datetime(vals["timestamp"]) for vals in vals_list if vals.get("timestamp")
        )
        return super().create(vals_list)

    @api.model
    def _prepare_partitions(self, timestamps):
        """Create the partitions these readings' days need (the cron creates days ahead: this
        is for a late reading's day, or one nobody prepared), committed on their own so that
        concurrent ingestion of the same day does not wait for this transaction."""
        ensure_partitions(self.env.cr, {timestamp.date() for timestamp in timestamps}, separately=True)

    @api.model
    def _raw_kept_from(self):
        """The first UTC day whose raw readings are still kept: older partitions were dropped
        (iot.usage.archive), so a reading of those days can no longer be checked for
        duplicates. None while nothing was dropped."""
        value = self.env["ir.config_parameter"].sudo().get_param("iot_usage.raw_kept_from")
        return fields.Date.to_date(value) if value else None

    @api.model
    def _too_old_reason(self, moment, kept_from):
        """Why a reading (or aggregate) measured at ``moment`` is refused, if its day's raw
        readings were dropped: it cannot be told from a redelivery of one already counted."""
        if kept_from and moment.date() < kept_from:
            return ("timestamp %s is before %s, the oldest day of raw readings kept (retention "
                    "window): it cannot be checked for duplicates" % (moment.isoformat(), kept_from.isoformat()))
        return None

    # ------------------------------------------------------------------
    # Ingestion
    # ------------------------------------------------------------------
    @api.model
    def _parse_reading(self, entry):
        require_entry(entry)
        return {
            "identifier": require_identifier(entry),
            "metric": require_text(entry, "metric", 64),
            "quantity": parse_quantity(entry.get("quantity")),
            "timestamp": parse_utc_timestamp(entry.get("timestamp")),
            "message_id": require_text(entry, "message_id", 255),
            "payload": optional_payload(entry),
        }

    @api.model
    def _metric_ids_by_code(self):
        return {metric.code: metric.id for metric in self.env["iot.usage.metric"].search([])}

    @api.model
    def api_ingest(self, records, source="api"):
        """Store usage readings; a reading re-sent with the same message_id counts once.

        Returns ``{"accepted": n, "duplicates": n, "rejected": [{"index", "reason"}]}``.
        Rejected entries are stored too (``iot.usage.reject``, with the raw entry and the
        reason) so that they can be fixed and re-processed. An entry carrying
        ``count`` and ``sum`` instead of ``quantity`` is a gateway aggregate
        (see ``api_ingest_aggregates``): a gateway can mix both in one batch.
        """
        check_batch(records)
        if source not in dict(SOURCES):
            raise ApiInputError("source must be one of %s" % ", ".join(dict(SOURCES)))
        self.check_access("create")
        aggregate_indexes = [index for index, entry in enumerate(records) if _is_aggregate(entry)]
        if aggregate_indexes:
            return self._ingest_mixed(records, aggregate_indexes, source)
        good, rejected = [], []
        for index, entry in enumerate(records):
            try:
                good.append((index, self._parse_reading(entry)))
            except ApiInputError as error:
                rejected.append((index, entry, None, str(error)))

        devices = self.env["iot_billing.device"]._api_find_by_identifier(
            {reading["identifier"] for _index, reading in good}
        )
        metrics = self._metric_ids_by_code()
        kept_from = self._raw_kept_from()
        rows = []
        for index, reading in good:
            device = devices.get(reading["identifier"])
            if not device:
                reason = "unknown device %r" % reading["identifier"]
            elif reading["metric"] not in metrics:
                reason = "unknown metric %r" % reading["metric"]
            elif too_old := self._too_old_reason(reading["timestamp"], kept_from):
                reason = too_old
            else:
                reading["device_id"] = device.id
                reading["company_id"] = device.company_id.id
                reading["metric_id"] = metrics[reading["metric"]]
                rows.append(reading)
                continue
            rejected.append((index, records[index], device, reason))

        accepted = 0
        if rows:
            self._prepare_partitions(row["timestamp"] for row in rows)
            keys_only = self._keys_only_company_ids({row["company_id"] for row in rows})
            # A company that kept only keys for a while may keep raw rows again: its keys
            # still make redeliveries duplicates.
            kept = [row for row in rows if row["company_id"] not in keys_only]
            known = self._stored_as_keys(kept) if kept else set()
            kept = [row for position, row in enumerate(kept) if position not in known]
            unkept = [row for row in rows if row["company_id"] in keys_only]
            accepted = (self._insert_readings(kept, source) if kept else 0) + (
                self._insert_keys_only(unkept) if unkept else 0)
            # Stored now (or already): an earlier refusal of the same entry is settled.
            self.env["iot.usage.reject"]._supersede(rows)
        return self._answer(rows, accepted, rejected, source)

    @api.model
    def _answer(self, rows, accepted, rejected, source):
        """Keep the refused entries ``(index, entry, device, reason)`` and answer the batch:
        ``rows`` were valid, ``accepted`` of them stored (the others were duplicates)."""
        if rejected:
            self._store_rejected([(entry, device, reason) for _i, entry, device, reason in rejected], source)
        return {
            "accepted": accepted,
            "duplicates": len(rows) - accepted,
            "rejected": sorted(
                ({"index": index, "reason": reason} for index, _e, _d, reason in rejected),
                key=lambda item: item["index"],
            ),
        }

    @api.model
    def _ingest_mixed(self, records, aggregate_indexes, source):
        """A batch of readings and gateway aggregates: each part stored by its own API, the
        answer with the indexes of the whole batch."""
        chosen = set(aggregate_indexes)
        reading_indexes = [index for index in range(len(records)) if index not in chosen]
        answers = [
            (indexes, method([records[index] for index in indexes], source=source))
            for indexes, method in ((reading_indexes, self.api_ingest), (aggregate_indexes, self.api_ingest_aggregates))
            if indexes
        ]
        return {
            "accepted": sum(answer["accepted"] for _indexes, answer in answers),
            "duplicates": sum(answer["duplicates"] for _indexes, answer in answers),
            "rejected": sorted(
                ({"index": indexes[item["index"]], "reason": item["reason"]}
                 for indexes, answer in answers for item in answer["rejected"]),
                key=lambda item: item["index"],
            ),
        }

    @api.model
    def _insert_readings(self, rows, source):
        """Store valid readings and add them to their usage buckets, in one statement;
        (device, message_id) already stored are skipped. Returns the number stored.

        Raw SQL: ON CONFLICT DO NOTHING makes retries and concurrent batches safe, only the
        readings actually inserted reach the buckets, and the ORM's per-row create cannot
        carry IoT volume. Access was checked by the caller; the company is the device's own.
        """
        self.flush_model()
        Bucket = self.env["iot.usage.bucket"]
        Bucket.flush_model()
        value_lists = Bucket._value_lists_wanted({row["metric_id"] for row in rows})
        self.env.cr.execute(SQL(
            """
            WITH inserted AS (
                INSERT INTO iot_usage (
                    device_id, company_id, metric_id, quantity, timestamp, message_id, payload,
                    source, received_at)
                SELECT row.device_id, row.company_id, row.metric_id, row.quantity, row.timestamp,
                       row.message_id, row.payload::jsonb, %(source)s, %(now)s
                  FROM unnest(%(device_ids)s::int[], %(company_ids)s::int[], %(metric_ids)s::int[],
                              %(quantities)s::numeric[], %(timestamps)s::timestamp[],
                              %(message_ids)s::varchar[], %(payloads)s::text[])
                       WITH ORDINALITY AS row(device_id, company_id, metric_id, quantity, timestamp,
                                              message_id, payload, position)
                 ORDER BY row.position
                ON CONFLICT DO NOTHING
                RETURNING id, device_id, company_id, metric_id, quantity, timestamp, payload
            ),
            %(buckets)s
            SELECT device_id, min(timestamp), max(timestamp), count(*) FROM inserted GROUP BY device_id
            """,
            source=source, now=fields.Datetime.now(), **_reading_arrays(rows),
            buckets=Bucket._aggregate_readings_sql("inserted", value_lists),
        ))
        added = self.env.cr.fetchall()
        self.invalidate_model()
        Bucket.invalidate_model()
        return self._usage_added(added)

    @api.model
    def _usage_added(self, rows):
        """Hand the devices that got new usage, ``[(device id, first, last timestamp, readings)]``
        from an insert statement, to ``_iot_usage_ingested``; returns the number of readings."""
        if rows:
            self._iot_usage_ingested({device_id: (first, last) for device_id, first, last, _count in rows})
        return sum(count for *_keys, count in rows)

    @api.model
    def _iot_usage_ingested(self, touched):
        """Hook: readings or aggregates were just added to their buckets, in this transaction.
        ``touched``: ``{device id: (first, last timestamp of its new readings, UTC)}``, one call
        per insert statement of a batch. Base: nothing; iot_prepaid rates prepaid items here."""

    @api.model
    def _keys_only_company_ids(self, company_ids):
        """The companies among ``company_ids`` that keep no raw readings."""
        companies = self.env["res.company"].sudo().browse(company_ids)  # a setting, read for ingestion
        return set(companies.filtered(lambda company: not company.iot_usage_raw_keep).ids)

    @api.model
    def _stored_as_keys(self, rows):
        """Positions in ``rows`` whose key is stored without its raw row. Cheap when no
        company keeps keys only: the key table's partitions are empty."""
        self.env.cr.execute("SELECT EXISTS (SELECT 1 FROM iot_usage_key)")
        if not self.env.cr.fetchone()[0]:
            return set()
        self.env.cr.execute(
            """
            SELECT key.position - 1
              FROM unnest(%s::int[], %s::varchar[], %s::timestamp[])
                   WITH ORDINALITY AS key(device_id, message_id, timestamp, position)
             WHERE EXISTS (SELECT 1 FROM iot_usage_key stored
                            WHERE stored.device_id = key.device_id AND stored.message_id = key.message_id
                              AND stored.timestamp = key.timestamp)
            """,
            [[row["device_id"] for row in rows], [row["message_id"] for row in rows],
             [row["timestamp"] for row in rows]],
        )
        return {position for (position,) in self.env.cr.fetchall()}

    @api.model
    def _insert_keys_only(self, rows):
        """Add valid readings to their usage buckets keeping only their keys (companies that
        keep no raw readings), in one statement; keys already stored are skipped. Returns the
        number of new readings.

        The key (device, message id, timestamp) is all deduplication needs: a redelivery
        within the retention window counts once, as with raw rows. The first of identical
        keys in the batch wins. Each new reading takes a number from the readings' id
        sequence, in arrival order, as a stored one would: buckets order readings of one
        instant by it (first/last).
        """
        Bucket = self.env["iot.usage.bucket"]
        Bucket.flush_model()
        value_lists = Bucket._value_lists_wanted({row["metric_id"] for row in rows})
        self.env.cr.execute(SQL(
            """
            WITH incoming AS (
                SELECT DISTINCT ON (row.device_id, row.message_id, row.timestamp) row.*
                  FROM unnest(%(device_ids)s::int[], %(company_ids)s::int[], %(metric_ids)s::int[],
                              %(quantities)s::numeric[], %(timestamps)s::timestamp[],
                              %(message_ids)s::varchar[], %(payloads)s::text[])
                       WITH ORDINALITY AS row(device_id, company_id, metric_id, quantity, timestamp,
                                              message_id, payload, position)
                 ORDER BY row.device_id, row.message_id, row.timestamp, row.position
            ),
            claimed AS (
                INSERT INTO iot_usage_key (device_id, message_id, timestamp)
                SELECT device_id, message_id, timestamp FROM incoming ORDER BY position
                ON CONFLICT DO NOTHING
                RETURNING device_id, message_id, timestamp
            ),
            fresh AS MATERIALIZED (
                SELECT incoming.*
                  FROM incoming JOIN claimed USING (device_id, message_id, timestamp)
                 -- stored as a raw reading before the company stopped keeping them
                 WHERE NOT EXISTS (
                       SELECT 1 FROM iot_usage usage
                        WHERE usage.device_id = incoming.device_id AND usage.message_id = incoming.message_id
                          AND usage.timestamp = incoming.timestamp)
                 ORDER BY incoming.position
            ),
            inserted AS (
                SELECT nextval('iot_usage_id_seq') AS id, device_id, company_id, metric_id, quantity,
                       timestamp, payload::jsonb AS payload
                  FROM fresh
            ),
            %(buckets)s
            SELECT device_id, min(timestamp), max(timestamp), count(*) FROM inserted GROUP BY device_id
            """,
            **_reading_arrays(rows), buckets=Bucket._aggregate_readings_sql("inserted", value_lists),
        ))
        added = self.env.cr.fetchall()
        Bucket.invalidate_model()
        return self._usage_added(added)

    # ------------------------------------------------------------------
    # Pre-aggregated input (edge mediation)
    # ------------------------------------------------------------------
    @api.model
    def _parse_aggregate(self, entry):
        require_entry(entry)
        count = entry.get("count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ApiInputError("'count' must be a positive integer")
        values = {key: parse_quantity(entry.get(key), key) for key in ("min", "max", "first", "last")}
        total = parse_quantity(entry.get("sum"), "sum", limit=MAX_QUANTITY * count)
        if not values["min"] <= min(values["first"], values["last"]) <= max(values["first"], values["last"]) \
                <= values["max"]:
            raise ApiInputError("'first' and 'last' must lie between 'min' and 'max'")
        if not values["min"] * count <= total <= values["max"] * count:
            raise ApiInputError("'sum' must lie between count x min and count x max")
        if count == 1 and not values["min"] == values["max"] == total:
            raise ApiInputError("an aggregate of one reading has min = max = sum")
        starts = parse_utc_timestamp(entry.get("timestamp_from"))
        ends = parse_utc_timestamp(entry.get("timestamp_to"))
        if ends < starts:
            raise ApiInputError("'timestamp_to' is before 'timestamp_from'")
        return {
            "identifier": require_identifier(entry),
            "metric": require_text(entry, "metric", 64),
            "count": count, "sum": total, **values,
            "timestamp_from": starts, "timestamp_to": ends,
            "message_id": require_text(entry, "message_id", 255),
        }

    @api.model
    def api_ingest_aggregates(self, records, source="api"):
        """Store usage a gateway already aggregated (edge mediation); a record re-sent with
        the same message_id counts once.

        Each record: ``{identifier, metric, count, sum, min, max, first, last, timestamp_from,
        timestamp_to, message_id}``: ``count`` readings measured from ``timestamp_from`` (the
        first) to ``timestamp_to`` (the last, included), both within one bucket interval of the
        metric (an hour by default). The record goes straight into its usage bucket and is kept
        as one raw reading (quantity = sum, the figures in its payload) for the audit window.
        Returns ``{"accepted": n, "duplicates": n, "rejected": [{"index", "reason"}]}``.
        """
        check_batch(records)
        if source not in dict(SOURCES):
            raise ApiInputError("source must be one of %s" % ", ".join(dict(SOURCES)))
        self.check_access("create")
        good, rejected = [], []
        for index, entry in enumerate(records):
            try:
                good.append((index, self._parse_aggregate(entry)))
            except ApiInputError as error:
                rejected.append((index, entry, None, str(error)))
        devices = self.env["iot_billing.device"]._api_find_by_identifier(
            {aggregate["identifier"] for _index, aggregate in good}
        )
        metrics = {metric.code: metric for metric in self.env["iot.usage.metric"].search([])}
        value_lists = self.env["iot.usage.bucket"]._value_lists_wanted([metric.id for metric in metrics.values()])
        needs_readings = set(value_lists.distinct_metric_ids) | set(value_lists.rounding_metric_ids)
        kept_from = self._raw_kept_from()
        rows = []
        for index, aggregate in good:
            device = devices.get(aggregate["identifier"])
            metric = metrics.get(aggregate["metric"])
            if not device:
                reason = "unknown device %r" % aggregate["identifier"]
            elif not metric:
                reason = "unknown metric %r" % aggregate["metric"]
            elif metric.id in needs_readings:
                reason = ("metric %r has usage calculators that need each reading (distinct payload values or "
                          "rounding per reading): send readings, not aggregates" % metric.code)
            elif bucket_start(aggregate["timestamp_from"], metric.bucket_interval) != bucket_start(
                    aggregate["timestamp_to"], metric.bucket_interval):
                reason = "the aggregate spans more than one %s of metric %r: send one per %s" % (
                    metric.bucket_interval, metric.code, metric.bucket_interval)
            elif too_old := self._too_old_reason(aggregate["timestamp_from"], kept_from):
                reason = too_old
            else:
                rows.append({**aggregate, "device_id": device.id, "company_id": device.company_id.id,
                             "metric_id": metric.id})
                continue
            rejected.append((index, records[index], device, reason))
        accepted = 0
        if rows:
            self._prepare_partitions(row["timestamp_from"] for row in rows)
            accepted = self._insert_aggregates(rows, source)
            self.env["iot.usage.reject"]._supersede(rows)
        return self._answer(rows, accepted, rejected, source)

    @api.model
    def _insert_aggregates(self, rows, source):
        """Keep each new aggregate as a raw reading and add it to its bucket, in one statement."""
        self.flush_model()
        Bucket = self.env["iot.usage.bucket"]
        Bucket.flush_model()
        columns = ("device_id", "company_id", "metric_id", "count", "sum", "min", "max", "first", "last",
                   "timestamp_from", "timestamp_to", "message_id")
        types = ("int", "int", "int", "int", "numeric", "numeric", "numeric", "numeric", "numeric",
                 "timestamp", "timestamp", "varchar")
        self.env.cr.execute(SQL(
            """
            WITH incoming AS (
                -- A message id sent twice in one batch counts once: the first entry.
                SELECT DISTINCT ON (device_id, message_id) *
                  FROM unnest(%(arrays)s) WITH ORDINALITY AS row(%(names)s, position)
                 ORDER BY device_id, message_id, position
            ),
            inserted AS (
                INSERT INTO iot_usage (
                    device_id, company_id, metric_id, quantity, timestamp, message_id, payload,
                    source, received_at)
                SELECT device_id, company_id, metric_id, sum, timestamp_from, message_id,
                       jsonb_build_object('aggregate', jsonb_build_object(
                           'count', count, 'sum', sum, 'min', min, 'max', max, 'first', first, 'last', last,
                           'timestamp_to', timestamp_to)),
                       %(source)s, %(now)s
                  FROM incoming
                ON CONFLICT DO NOTHING
                RETURNING id, device_id, message_id, timestamp
            ),
            partial AS (
                SELECT incoming.company_id, incoming.device_id, incoming.metric_id,
                       date_trunc(metric.bucket_interval, incoming.timestamp_from) AS bucket_start,
                       date_trunc(metric.bucket_interval, incoming.timestamp_from)
                           + ('1 ' || metric.bucket_interval)::interval AS bucket_stop,
                       incoming.count AS reading_count, incoming.sum AS quantity_sum,
                       incoming.min AS quantity_min, incoming.max AS quantity_max,
                       incoming.timestamp_from AS first_at, incoming.first AS first_quantity,
                       inserted.id AS first_seq,
                       incoming.timestamp_to AS last_at, incoming.last AS last_quantity,
                       inserted.id AS last_seq,
                       NULL::jsonb AS distinct_values, NULL::jsonb AS quantity_counts
                  FROM incoming
                  -- the unique key of the partitioned table holds the timestamp
                  JOIN inserted ON inserted.device_id = incoming.device_id
                   AND inserted.message_id = incoming.message_id
                   AND inserted.timestamp = incoming.timestamp_from
                  JOIN iot_usage_metric metric ON metric.id = incoming.metric_id
            ),
            merged AS (
                SELECT company_id, device_id, metric_id, bucket_start, bucket_stop, %(merged)s
                  FROM partial
                 GROUP BY company_id, device_id, metric_id, bucket_start, bucket_stop
            ),
            %(buckets)s
            SELECT device_id, min(timestamp), max(timestamp), count(*) FROM inserted GROUP BY device_id
            """,
            arrays=SQL(", ").join(
                SQL("%s::%s[]", [row[column] for row in rows], SQL(kind))
                for column, kind in zip(columns, types, strict=True)
            ),
            names=SQL(", ").join(SQL.identifier(column) for column in columns),
            source=source, now=fields.Datetime.now(), merged=BUCKETS_MERGE, buckets=Bucket._upsert_sql("merged"),
        ))
        added = self.env.cr.fetchall()
        self.invalidate_model()
        Bucket.invalidate_model()
        return self._usage_added(added)

    @api.model
    def _store_rejected(self, rejected, source):
        """Keep refused entries in iot.usage.reject (``(entry, device or None, reason)``) — not
        while their rejects are being re-processed: those are kept as they are."""
        if self.env.context.get("iot_usage_reprocessing"):
            return 0
        return self.env["iot.usage.reject"]._store(rejected, source)

    @api.model
    def api_reject(self, items, source="mqtt"):
        """Unreadable payloads: kept by ``iot.usage.reject.api_reject`` (the bridge calls this
        name on ``iot.usage``)."""
        return self.env["iot.usage.reject"].api_reject(items, source=source)


def _reading_arrays(rows):
    """The columns of parsed readings as the arrays the set-based inserts unnest."""
    return {
        array: [row[column] for row in rows]
        for array, column in (
            ("device_ids", "device_id"), ("company_ids", "company_id"), ("metric_ids", "metric_id"),
            ("quantities", "quantity"), ("timestamps", "timestamp"), ("message_ids", "message_id"),
            ("payloads", "payload"),
        )
    }


def _is_aggregate(entry):
    return isinstance(entry, dict) and "count" in entry and "sum" in entry and "quantity" not in entry
