import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from odoo import api, fields, models
from odoo.addons.iot_contract.tools import split_periods
from odoo.addons.iot_device.tools import (
    ApiInputError,
    check_batch,
    optional_payload,
    parse_utc_timestamp,
    require_entry,
    require_identifier,
    require_text,
)
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import create_partitioned_table, ensure_partitions

# Quantities are stored exactly with this many decimals (numeric column).
QUANTITY_DIGITS = 6
QUANTITY_STEP = Decimal(1).scaleb(-QUANTITY_DIGITS)
# numeric(20, 6) keeps 14 integer digits; a larger reading is a device error.
MAX_QUANTITY = Decimal("1e14")
SOURCES = [("api", "API"), ("mqtt", "MQTT"), ("import", "Import"), ("manual", "Manual")]

# Readings are assigned to the schedule whose period holds their timestamp; one
# measured in a period already invoiced goes to the item's next open schedule.
# They are marked valued in the same statement (each UPDATE of a reading rewrites
# it and all its index entries): the valuation that follows runs in the same
# transaction, so a failure rolls both back.
# The due schedules drive the join (materialized first) so that PostgreSQL looks
# up each device's readings by index instead of pairing every item with every reading.
# Periods begin and end at midnight in the contract's time zone (local_midnight, see
# init), readings are stored in UTC.
ASSIGN_READINGS_SQL = """
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
        SELECT DISTINCT ON (usage.id)
               usage.id AS usage_id, due.id AS schedule_id, due.contract_item_id,
               usage.timestamp < due.starts AS is_late
          FROM due
          JOIN iot_usage usage ON usage.device_id = due.device_id
         WHERE usage.state = 'to_value'
           AND usage.timestamp >= due.item_starts
           AND (due.item_stops IS NULL OR usage.timestamp < due.item_stops)
           AND usage.timestamp < due.stops
           AND (usage.timestamp >= due.starts
                OR NOT EXISTS (
                    SELECT 1 FROM iot_invoicing_schedule open_period
                     WHERE open_period.contract_item_id = due.contract_item_id
                       AND open_period.state = 'planned' AND open_period.part != 'fee'
                       AND open_period.id <> due.id
                       AND usage.timestamp >= local_midnight(open_period.date_from, due.tz)
                       AND usage.timestamp < local_midnight(open_period.date_to + 1, due.tz)))
         ORDER BY usage.id, due.starts
    )
    UPDATE iot_usage usage
       SET schedule_id = candidate.schedule_id,
           contract_item_id = candidate.contract_item_id,
           is_late = candidate.is_late,
           state = 'valued'
      FROM candidate
     WHERE usage.id = candidate.usage_id
"""


def parse_quantity(value):
    """A reading's quantity as an exact Decimal, from a JSON number or a decimal string."""
    if isinstance(value, bool) or value is None:
        raise ApiInputError("'quantity' must be a number or a decimal string")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that round-trips: 0.1 stays 0.1
    if isinstance(value, int):
        if value >= MAX_QUANTITY:  # also spares str() of a 5,000-digit integer (ValueError)
            raise ApiInputError("quantity is too large (limit %s)" % MAX_QUANTITY)
        value = str(value)
    if not isinstance(value, str):
        raise ApiInputError("'quantity' must be a number or a decimal string")
    try:
        quantity = Decimal(value.strip())
    except InvalidOperation:
        raise ApiInputError("quantity %r is not a number" % value[:40]) from None
    if not quantity.is_finite():
        raise ApiInputError("quantity %r is not finite" % value[:40])
    if quantity < 0:
        raise ApiInputError("quantity %s is negative" % value[:40])
    if quantity >= MAX_QUANTITY:
        raise ApiInputError("quantity %s is too large (limit %s)" % (value[:40], MAX_QUANTITY))
    return quantity.quantize(QUANTITY_STEP, rounding=ROUND_HALF_UP)


class IotUsage(models.Model):
    _name = "iot.usage"
    _description = "IoT Usage Reading"
    _order = "timestamp desc, id desc"
    _rec_name = "message_id"
    # No create/write user and date: their two foreign keys cost about a sixth of every
    # insert (PostgreSQL inserts 1.2 x the readings per second without them, docs/benchmarks.md).
    # When a reading arrived is received_at; who sent it, its source.
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
    contract_item_id = fields.Many2one("iot.contract.item", index="btree_not_null")
    schedule_id = fields.Many2one("iot.invoicing.schedule", index="btree_not_null")
    state = fields.Selection(
        [
            ("to_value", "To value"),
            ("valued", "Valued"),
            ("invoiced", "Invoiced"),
            ("rejected", "Rejected"),
        ],
        required=True,
        default="to_value",
    )
    is_late = fields.Boolean(
        help="Measured in a period already invoiced: billed on the item's next open schedule."
    )
    # Why a stored reading was rejected by billing (no contract item covers it). Input
    # refused at ingestion is not a reading: see iot.usage.reject.
    reject_reason = fields.Char()

    # A unique constraint of a partitioned table must hold the partition key: a message
    # id is unique per device and timestamp. A redelivered message (same id, same
    # timestamp) lands in the same day's partition and is a duplicate (README, Storage).
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
        # as for any table. It leaves out the foreign keys of a table that is not ordinary
        # (Many2one.update_db_foreign_key); PostgreSQL has them on partitioned tables: they
        # are declared here as the ORM would, and created with the others.
        create_partitioned_table(self.env.cr, self._description)
        result = super()._auto_init()
        for field in self._fields.values():
            if field.type == "many2one" and field.store and self.env[field.comodel_name]._auto:
                self.pool.add_foreign_key(
                    self._table, field.name, self.env[field.comodel_name]._table, "id",
                    field.ondelete or "set null", self, field._module,
                )
        return result

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
        # The billing queries read one device's readings of one metric over a period,
        # and the readings still to value of the due devices (a small, moving subset).
        # No index on the state alone: valued and invoiced readings are the bulk, and
        # every insert would pay for it. The Readings list opens on a recent window,
        # newest first: the timestamp index serves it (and prunes to a few partitions).
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS iot_usage_device_metric_timestamp_idx
                ON iot_usage (device_id, metric_id, timestamp);
            CREATE INDEX IF NOT EXISTS iot_usage_to_value_device_idx
                ON iot_usage (device_id, timestamp) WHERE state = 'to_value';
            CREATE INDEX IF NOT EXISTS iot_usage_timestamp_idx ON iot_usage (timestamp);
            """
        )
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
        is for a late reading's day, or one nobody prepared)."""
        ensure_partitions(self.env.cr, {timestamp.date() for timestamp in timestamps})

    @api.model
    def _raw_kept_from(self):
        """The first UTC day whose raw readings are still kept: older partitions were dropped
        (iot.usage.archive), so a reading of those days can no longer be checked for
        duplicates. None while nothing was dropped."""
        value = self.env["ir.config_parameter"].sudo().get_param("iot_usage.raw_kept_from")
        return fields.Date.to_date(value) if value else None

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
        reason) so that they can be fixed and re-processed.
        """
        check_batch(records)
        if source not in dict(SOURCES):
            raise ApiInputError("source must be one of %s" % ", ".join(dict(SOURCES)))
        self.check_access("create")
        return self._ingest(records, source)

    @api.model
    def _ingest(self, records, source, store_rejected=True):
        """api_ingest without its checks; ``store_rejected=False`` when the caller keeps the
        refused entries itself (re-processing)."""
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
            elif kept_from and reading["timestamp"].date() < kept_from:
                # Its day's raw readings were dropped: it cannot be told from a redelivery
                # of a reading already counted, so it is not counted (README, Storage).
                reason = ("timestamp %s is before %s, the oldest day of raw readings kept "
                          "(retention window): it cannot be checked for duplicates"
                          % (reading["timestamp"].isoformat(), kept_from.isoformat()))
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
            accepted = self._insert_readings(rows, source)
            # Stored now (or already): an earlier refusal of the same entry is settled.
            self.env["iot.usage.reject"]._supersede(rows)
        if rejected and store_rejected:
            self.env["iot.usage.reject"]._store(
                [(entry, device, reason) for _i, entry, device, reason in rejected], source
            )
        return {
            "accepted": accepted,
            "duplicates": len(rows) - accepted,
            "rejected": sorted(
                ({"index": index, "reason": reason} for index, _e, _d, reason in rejected),
                key=lambda item: item["index"],
            ),
        }

    @api.model
    def _insert_readings(self, rows, source):
        """Insert valid readings in one statement; (device, message_id) already stored are skipped.

        Raw SQL: ON CONFLICT DO NOTHING makes retries and concurrent batches
        safe, and the ORM's per-row create cannot carry IoT volume. Access was
        checked by the caller; the company is the device's own.
        """
        self.flush_model()
        self.env.cr.execute(
            """
            INSERT INTO iot_usage (
                device_id, company_id, metric_id, quantity, timestamp, message_id, payload,
                source, state, is_late, received_at)
            SELECT row.device_id, row.company_id, row.metric_id, row.quantity, row.timestamp,
                   row.message_id, row.payload::jsonb, %(source)s, 'to_value', false, %(now)s
              FROM unnest(%(device_ids)s::int[], %(company_ids)s::int[], %(metric_ids)s::int[],
                          %(quantities)s::numeric[], %(timestamps)s::timestamp[],
                          %(message_ids)s::varchar[], %(payloads)s::text[])
                   AS row(device_id, company_id, metric_id, quantity, timestamp, message_id, payload)
            ON CONFLICT DO NOTHING
            """,
            {
                "source": source,
                "now": fields.Datetime.now(),
                "device_ids": [row["device_id"] for row in rows],
                "company_ids": [row["company_id"] for row in rows],
                "metric_ids": [row["metric_id"] for row in rows],
                "quantities": [row["quantity"] for row in rows],
                "timestamps": [row["timestamp"] for row in rows],
                "message_ids": [row["message_id"] for row in rows],
                "payloads": [row["payload"] for row in rows],
            },
        )
        inserted = self.env.cr.rowcount
        self.invalidate_model()
        return inserted

    @api.model
    def api_reject(self, items, source="mqtt"):
        """Unreadable payloads: kept by ``iot.usage.reject.api_reject`` (the bridge calls this
        name on ``iot.usage``)."""
        return self.env["iot.usage.reject"].api_reject(items, source=source)

    # ------------------------------------------------------------------
    # Billing: readings follow the schedules that value them
    # ------------------------------------------------------------------
    @api.model
    def _assign_to_schedules(self, schedules):
        """Give each reading still to value of these (due) schedules' devices its schedule."""
        self.flush_model()
        schedules.flush_model()
        self.env.cr.execute(ASSIGN_READINGS_SQL, {"schedule_ids": schedules.ids})
        self.invalidate_model(["schedule_id", "contract_item_id", "is_late", "state"])

    @api.model
    def _mark_for_schedules(self, schedules, from_states, to_state, detach=False):
        """Move the readings of ``schedules`` from ``from_states`` to ``to_state``; ``detach``
        also frees them from the schedule (its period was cancelled)."""
        self.flush_model()
        self.env.execute_query(SQL(
            "UPDATE iot_usage SET state = %s %s WHERE schedule_id = ANY(%s) AND state IN %s",
            to_state,
            SQL(", schedule_id = NULL, is_late = false") if detach else SQL(),
            schedules.ids,
            tuple(from_states),
        ))
        self.invalidate_model(["state", "schedule_id", "is_late"])

    @api.model
    def _release_for_schedules(self, schedules):
        """The periods of ``schedules`` are billed again (their invoice was undone): readings go
        back to be valued, detached, and the valuations forget the invoice lines they were on."""
        self._mark_for_schedules(schedules, ("valued", "invoiced"), "to_value", detach=True)
        Valuation = self.env["iot.usage.valuation"]
        Valuation.flush_model(["move_line_id"])
        self.env.execute_query(SQL(
            "UPDATE iot_usage_valuation SET move_line_id = NULL WHERE schedule_id = ANY(%s)", schedules.ids,
        ))
        Valuation.invalidate_model(["move_line_id"])
        schedules.invalidate_recordset(["invoice_line_ids", "invoice_line_id"])

    @api.model
    def _plan_late_usage(self, company, before):
        """Periods ``{(item id, date_from): date_to}`` of readings older than ``before`` measured
        in an item that has no open usage period left (its last period was invoiced: term ended,
        terminated). A late-usage schedule re-rates such a period with them and bills the
        difference (``iot.usage.valuation._value_schedules``). Readings an open period can
        still take wait for it (billed there as late readings)."""
        self.flush_model()
        self.env["iot.invoicing.schedule"].flush_model()
        self.env["iot.contract.item"].flush_model()
        # Only an item whose term has ended can have no open period left; among those, the
        # ones still holding a planned usage period are not closed. Three small queries rather
        # than one join, whose plan goes wrong right after a large activation (no statistics).
        ended = self.env.execute_query(SQL(
            """
            SELECT item.id, item.device_id, item.date_start, item.date_end, item.billing_period,
                   coalesce(contract.tz, 'UTC')
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
            SELECT DISTINCT item.id, item.date_start, item.date_end, item.billing_period,
                   (usage.timestamp AT TIME ZONE 'UTC' AT TIME ZONE item.tz)::date
              FROM unnest(%s::int[], %s::int[], %s::date[], %s::date[], %s::varchar[], %s::varchar[])
                   AS item(id, device_id, date_start, date_end, billing_period, tz)
              JOIN iot_usage usage ON usage.device_id = item.device_id
               AND usage.state = 'to_value' AND usage.timestamp < %s
               AND usage.timestamp >= local_midnight(item.date_start, item.tz)
               AND usage.timestamp < local_midnight(item.date_end + 1, item.tz)
            """,
            *([row[column] for row in closed] for column in range(6)),
            before,
        ))
        periods = {}
        for item_id, date_start, date_end, billing_period, day in rows:
            for date_from, date_to, _start, _end in split_periods(date_start, date_end, billing_period):
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
        """Readings older than ``before`` that no contract item covers are rejected, with
        the reason, so that they show up for re-processing instead of waiting forever."""
        self.flush_model()
        self.env.cr.execute(
            """
            UPDATE iot_usage usage
               SET state = 'rejected', reject_reason = 'outside any active contract item'
             WHERE usage.state = 'to_value' AND usage.company_id = %s AND usage.timestamp < %s
               AND NOT EXISTS (
                   SELECT 1 FROM iot_contract_item item
                     JOIN iot_contract contract ON contract.id = item.contract_id
                    WHERE item.device_id = usage.device_id
                      AND usage.timestamp >= local_midnight(item.date_start, contract.tz)
                      AND (item.date_end IS NULL
                           OR usage.timestamp < local_midnight(item.date_end + 1, contract.tz)))
            """,
            (company.id, before),
        )
        count = self.env.cr.rowcount
        self.invalidate_model(["state", "reject_reason"])
        return count

    # ------------------------------------------------------------------
    # Readings rejected by billing
    # ------------------------------------------------------------------
    def action_reprocess(self):
        """Readings rejected for lack of a contract item go back to be valued (e.g. after the
        item was created): the next billing run looks at them again."""
        rejected = self.filtered(lambda usage: usage.state == "rejected")
        if not rejected:
            raise UserError(self.env._("Select rejected readings to re-process."))
        rejected.write({"state": "to_value", "reject_reason": False})
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "message": self.env._("%s readings will be valued again.", len(rejected)),
                "type": "info",
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
