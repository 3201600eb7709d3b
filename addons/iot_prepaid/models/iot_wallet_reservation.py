import datetime
from decimal import Decimal

from odoo import api, fields, models
from odoo.addons.iot_device.tools import ApiInputError, to_decimal
from odoo.addons.iot_usage.models.iot_usage_calculator import price_amount, round_to_step
from odoo.tools import SQL

RESERVATION_STATES = [
    ("open", "Open"),
    ("confirmed", "Confirmed"),
    ("released", "Released"),
    ("expired", "Expired"),
]
# Refusals of an authorization: answered, never raised (the platform decides what to do).
NO_CREDIT = "no credit"
DEVICE_BLOCKED = "device blocked"
DEVICE_INACTIVE = "device not active"
UNKNOWN_DEVICE = "unknown device"
UNKNOWN_METRIC = "unknown metric"
NOT_PREPAID = "not prepaid"
NO_PERIOD = "no running period"
# How an aggregation measures the period once one more reading of ``asked`` is added.
# The others (distinct payload values, events) cannot be told ahead: nothing is held for them.
WITH_ONE_MORE_READING = {
    "sum": lambda measure, asked: measure.quantity + asked,
    "count": lambda measure, asked: Decimal(measure.count + 1),
    "max": lambda measure, asked: max(measure.quantity, asked),
    "last": lambda measure, asked: asked,
    "avg": lambda measure, asked: (measure.quantity * measure.count + asked) / (measure.count + 1),
}


class IotWalletReservation(models.Model):
    """Credit held for an authorized use (POST /iot/authorize), until confirmed, released or
    expired. Holds never take money: the confirmed quantity is rated as a reading.

    The API's path is a handful of statements (no ORM record loops). Concurrency: the holds of
    one wallet are made one after the other under a transaction-level advisory lock of the
    wallet, and the check ``balance - open holds >= amount`` runs after the lock is taken, in a
    READ COMMITTED transaction (the controller's), so it sees every hold committed before. The
    wallet row itself is not written by a hold: ingestion locks and updates it (rating), and a
    hold writing it would make every batch of the same wallets fail to serialize.
    """

    _name = "iot.wallet.reservation"
    _description = "IoT Prepaid Credit Reservation"
    _order = "id desc"
    _check_company_auto = True

    wallet_id = fields.Many2one("iot.wallet", required=True, index=True, ondelete="restrict", readonly=True)
    company_id = fields.Many2one(related="wallet_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="wallet_id.currency_id", store=True)
    contract_id = fields.Many2one(related="wallet_id.contract_id", string="Contract")
    device_id = fields.Many2one("iot_billing.device", required=True, ondelete="restrict", readonly=True)
    metric_id = fields.Many2one("iot.usage.metric", required=True, ondelete="restrict", readonly=True)
    schedule_id = fields.Many2one(
        "iot.invoicing.schedule", string="Period", ondelete="set null", readonly=True,
        help="The billing period whose usage priced the hold.",
    )
    quantity = fields.Float(digits=(20, 6), readonly=True, help="The quantity asked for.")
    amount = fields.Monetary(readonly=True, help="Credit held: what the quantity costs on top of the period's usage.")
    state = fields.Selection(RESERVATION_STATES, required=True, default="open", index=True, readonly=True)
    expires_at = fields.Datetime(required=True, index=True, readonly=True)
    closed_at = fields.Datetime(readonly=True, help="When it was confirmed, released or expired.")
    confirmed_quantity = fields.Float(
        digits=(20, 6), readonly=True, help="Stored as a reading of the device (message id reservation-<id>).",
    )

    def init(self):
        # Every authorization sums its wallet's open holds, and picks the expired ones.
        self.env.cr.execute(
            """CREATE INDEX IF NOT EXISTS iot_wallet_reservation_open_idx
                   ON iot_wallet_reservation (wallet_id, expires_at) WHERE state = 'open'"""
        )

    # ------------------------------------------------------------------
    # The authorization API (controllers/main.py)
    # ------------------------------------------------------------------
    @api.model
    def _api_authorize(self, identifier, metric, quantity):
        """Hold the credit ``quantity`` of ``metric`` costs the device ``identifier``.

        Returns ``{"authorized": True, reservation_id, amount, balance, available, expires_at,
        currency}`` or ``{"authorized": False, "reason": ..., balance?, available?, amount?}``.
        """
        self.env["iot.usage"].check_access("create")  # who may send readings may ask to
        now = fields.Datetime.now()
        facts = self._authorization_facts(identifier, metric, now)
        if not facts:
            return _refusal(UNKNOWN_DEVICE)
        device_id, device_state, metric_id, schedule_id, prepaid, contract_id, wallet_id, held = facts
        if device_state == "suspended":
            return _refusal(DEVICE_BLOCKED)
        if device_state != "active":
            return _refusal(DEVICE_INACTIVE)
        if not metric_id:
            return _refusal(UNKNOWN_METRIC)
        if not prepaid:
            return _refusal(NOT_PREPAID)
        if not schedule_id:
            return _refusal(NO_PERIOD)
        # sudo: the API user may not read contracts, wallets nor prices; only amounts leave.
        self = self.sudo()
        if not wallet_id:
            wallet_id = self.env["iot.wallet"]._for_contracts(self.env["iot.contract"].browse(contract_id)).id
        self._expire_due(wallet_id, now)
        schedule = self.env["iot.invoicing.schedule"].browse(schedule_id)
        amount = self._hold_amount(schedule, metric_id, held, quantity)
        hold_minutes = self.env.company.iot_prepaid_hold_minutes or 15
        expires_at = now + datetime.timedelta(minutes=hold_minutes)
        self.env.cr.execute(
            "SELECT pg_advisory_xact_lock('iot_wallet'::regclass::oid::int, %s)", [wallet_id]
        )
        # A new statement after the lock: a READ COMMITTED snapshot of it sees every hold made
        # before (under a REPEATABLE READ snapshot, taken earlier, it would not).
        rows = self.env.execute_query(SQL(
            """
            WITH wallet AS (
                SELECT wallet.id, wallet.balance,
                       wallet.balance - coalesce((
                           SELECT sum(hold.amount) FROM iot_wallet_reservation hold
                            WHERE hold.wallet_id = wallet.id AND hold.state = 'open'
                              AND hold.expires_at > %(now)s), 0) AS available
                  FROM iot_wallet wallet WHERE wallet.id = %(wallet_id)s
            ),
            inserted AS (
                INSERT INTO iot_wallet_reservation (
                    wallet_id, company_id, currency_id, device_id, metric_id, schedule_id, quantity,
                    amount, state, expires_at, create_uid, create_date, write_uid, write_date)
                SELECT wallet.id, source.company_id, source.currency_id, %(device_id)s, %(metric_id)s,
                       %(schedule_id)s, %(quantity)s, %(amount)s, 'open', %(expires_at)s,
                       %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM wallet JOIN iot_wallet source ON source.id = wallet.id
                 WHERE wallet.available >= %(amount)s
                RETURNING id
            )
            SELECT wallet.balance::text, wallet.available::text, (SELECT id FROM inserted) FROM wallet
            """,
            now=now, wallet_id=wallet_id, device_id=device_id, metric_id=metric_id, schedule_id=schedule_id,
            quantity=quantity, amount=amount, expires_at=expires_at, uid=self.env.uid,
        ))
        balance, available, reservation_id = rows[0]
        balance, available = Decimal(balance), Decimal(available)
        if not reservation_id:
            return _refusal(NO_CREDIT, balance=balance, available=available, amount=amount)
        self._invalidate_holds()
        return {
            "authorized": True,
            "reservation_id": reservation_id,
            "amount": float(amount),
            "balance": float(balance),
            "available": float(available - amount),
            "expires_at": _iso(expires_at),
        }

    @api.model
    def _api_confirm(self, reservation_id, quantity):
        """Store the ``quantity`` used as a reading of the reservation's device, rated and
        debited by the normal ingestion, and close the hold, in one transaction. A confirm sent
        again answers as the first did: the reading's message id is the reservation's."""
        self.env["iot.usage"].check_access("create")
        hold = self._lock_for_closing(reservation_id)
        if not hold:
            return {"confirmed": False, "reason": "unknown reservation"}
        state, identifier, metric_code, created_at, confirmed = hold
        if state == "released":
            return {"confirmed": False, "reason": "reservation released"}
        if state == "confirmed":
            if to_decimal(confirmed) != quantity:
                return {"confirmed": False, "reason": "reservation already confirmed with quantity %s"
                        % _decimal_text(confirmed)}
            return self._confirmed_answer(reservation_id)
        if quantity:
            # The reading is measured when the use was authorized: it is priced in the period
            # the hold was, and a retried confirm has the same key (device, message id, time).
            answer = self.env["iot.usage"].api_ingest([{
                "identifier": identifier, "metric": metric_code, "quantity": str(quantity),
                "timestamp": created_at.replace(tzinfo=datetime.UTC).isoformat(),
                "message_id": "reservation-%d" % reservation_id,
            }], source="api")
            if answer["rejected"]:
                raise ApiInputError(answer["rejected"][0]["reason"])
        self.env.execute_query(SQL(
            """UPDATE iot_wallet_reservation
                  SET state = 'confirmed', confirmed_quantity = %s,
                      closed_at = coalesce(closed_at, %s), write_uid = %s, write_date = %s
                WHERE id = %s""",
            quantity, fields.Datetime.now(), self.env.uid, fields.Datetime.now(), reservation_id,
        ))
        self._invalidate_holds()
        return self._confirmed_answer(reservation_id)

    @api.model
    def _api_release(self, reservation_id):
        """Close an open hold without any debit (the use did not happen)."""
        self.env["iot.usage"].check_access("create")
        hold = self._lock_for_closing(reservation_id)
        if not hold:
            return {"released": False, "reason": "unknown reservation"}
        state = hold[0]
        if state == "confirmed":
            return {"released": False, "reason": "reservation confirmed"}
        if state == "open":
            self.env.execute_query(SQL(
                """UPDATE iot_wallet_reservation SET state = 'released', closed_at = %s, write_uid = %s,
                          write_date = %s WHERE id = %s""",
                fields.Datetime.now(), self.env.uid, fields.Datetime.now(), reservation_id,
            ))
            self._invalidate_holds()
        # An expired hold was released by its expiry: releasing it again changes nothing.
        return dict(self._wallet_answer(reservation_id), released=True, reservation_id=reservation_id)

    # ------------------------------------------------------------------
    # The statements behind the API
    # ------------------------------------------------------------------
    @api.model
    def _authorization_facts(self, identifier, metric, now):
        """``(device id, device state, metric id, running schedule id, prepaid, contract id,
        wallet id, held)`` of the current company's device ``identifier``, or None: one indexed
        query. ``held``: what the device's open holds of the metric already asked for (a new
        hold is priced after them: its tier follows theirs)."""
        for model in ("iot_billing.device", "iot.contract.item", "iot.invoicing.schedule", "iot.contract",
                      "iot.wallet"):
            self.env[model].flush_model()
        rows = self.env.execute_query(SQL(
            """
            SELECT device.id, device.state, metric.id, schedule.id, coalesce(%(prepaid)s, false), contract.id,
                   wallet.id,
                   (SELECT coalesce(sum(hold.quantity), 0) FROM iot_wallet_reservation hold
                     WHERE hold.wallet_id = wallet.id AND hold.state = 'open' AND hold.expires_at > %(now)s
                       AND hold.device_id = device.id AND hold.metric_id = metric.id)
              FROM iot_billing_device device
              LEFT JOIN iot_usage_metric metric ON metric.code = %(metric)s AND metric.active
              LEFT JOIN LATERAL (
                   SELECT item.id, item.contract_id, item.product_id FROM iot_contract_item item
                    WHERE item.device_id = device.id AND item.state = 'running'
                    ORDER BY item.date_start DESC, item.id DESC LIMIT 1) item ON true
              LEFT JOIN iot_contract contract ON contract.id = item.contract_id
              LEFT JOIN product_product product ON product.id = item.product_id
              LEFT JOIN product_template template ON template.id = product.product_tmpl_id
              LEFT JOIN LATERAL (
                   SELECT schedule.id FROM iot_invoicing_schedule schedule
                    WHERE schedule.contract_item_id = item.id AND schedule.state = 'planned'
                      AND schedule.part IN ('all', 'usage')
                      AND %(now)s >= local_midnight(schedule.date_from, contract.tz)
                      AND %(now)s < local_midnight(schedule.date_to + 1, contract.tz)
                    ORDER BY schedule.date_from LIMIT 1) schedule ON true
              LEFT JOIN iot_wallet wallet ON wallet.contract_id = contract.id
             WHERE device.company_id = %(company_id)s AND device.identifier = %(identifier)s
            """,
            prepaid=SQL(self.env["iot.contract"]._iot_prepaid_sql("contract", "template")),
            now=now, company_id=self.env.company.id, identifier=identifier, metric=metric,
        ))
        if not rows:
            return None
        *facts, held = rows[0]
        return (*facts, to_decimal(held))

    @api.model
    def _hold_amount(self, schedule, metric_id, held, asked):
        """What ``asked`` of the metric adds to the period's amount, ``held`` being asked for
        already: the period-to-date amount with them less without, by the rules of the period
        and the code rating and billing use (scope, price terms, tiers across the period,
        included quantity, minimum)."""
        scope = self.env["iot.usage.valuation"]._usage_scopes(schedule, to_date=True)[0]
        rules = scope.calculators.filtered(
            lambda rule: rule.source == "usage" and rule.metric_id.id == metric_id
            and rule.aggregation in WITH_ONE_MORE_READING
        )
        if not rules:
            return Decimal(0)
        scope = scope._replace(calculators=rules)
        measures = self.env["iot.usage.calculator"]._evaluate([scope])
        step = rules._currency_step(scope.currency)
        total = Decimal(0)
        for rule in rules:
            terms = rule._terms()
            convert = scope.convert(rule) if scope.convert else None
            measure = measures[scope.key, rule.id]
            if terms.per_reading:
                # Each reading's amount is rounded on its own: the new reading's is the hold.
                price = (convert or (lambda price: price))(terms.unit_price)
                total += round_to_step(asked * price, step)
                continue
            before = WITH_ONE_MORE_READING[rule.aggregation](measure, held) if held else measure.quantity
            after = WITH_ONE_MORE_READING[rule.aggregation](measure, held + asked)
            amounts = [price_amount(terms, quantity, step, convert=convert, proration=scope.proration)
                       for quantity in (before, after)]
            total += max(Decimal(0), amounts[1] - amounts[0])
        return total

    @api.model
    def _expire_due(self, wallet_id, now):
        """Close the wallet's holds whose time is up (the next authorization does it, before
        the cron): those another transaction is closing are skipped, not waited for."""
        self.env.execute_query(SQL(
            """UPDATE iot_wallet_reservation hold SET state = 'expired', closed_at = %(now)s, write_date = %(now)s
                WHERE hold.id IN (SELECT id FROM iot_wallet_reservation
                                   WHERE wallet_id = %(wallet_id)s AND state = 'open' AND expires_at <= %(now)s
                                   ORDER BY id FOR UPDATE SKIP LOCKED)""",
            now=now, wallet_id=wallet_id,
        ))
        self._invalidate_holds()

    @api.model
    def _lock_for_closing(self, reservation_id):
        """``(state, device identifier, metric code, created at, confirmed quantity)`` of the
        current companies' reservation, its row locked: a concurrent confirm or release of it
        waits, then sees what this one did."""
        self.flush_model()
        rows = self.env.execute_query(SQL(
            """SELECT hold.state, device.identifier, metric.code, hold.create_date, hold.confirmed_quantity::text
                 FROM iot_wallet_reservation hold
                 JOIN iot_billing_device device ON device.id = hold.device_id
                 JOIN iot_usage_metric metric ON metric.id = hold.metric_id
                WHERE hold.id = %s AND hold.company_id = ANY(%s)
                  FOR UPDATE OF hold""",
            reservation_id, self.env.companies.ids,
        ))
        if not rows:
            return None
        state, identifier, metric, created_at, confirmed = rows[0]
        if state == "open" and self._expire_due_one(reservation_id):
            state = "expired"
        return state, identifier, metric, created_at, confirmed

    @api.model
    def _expire_due_one(self, reservation_id):
        rows = self.env.execute_query(SQL(
            """UPDATE iot_wallet_reservation SET state = 'expired', closed_at = %(now)s, write_date = %(now)s
                WHERE id = %(id)s AND state = 'open' AND expires_at <= %(now)s RETURNING id""",
            now=fields.Datetime.now(), id=reservation_id,
        ))
        self._invalidate_holds()
        return bool(rows)

    @api.model
    def _invalidate_holds(self):
        """The holds changed by SQL: their records and the wallets' reserved credit are read again."""
        self.invalidate_model()
        self.env["iot.wallet"].invalidate_model(["reserved", "available"])

    @api.model
    def _wallet_answer(self, reservation_id):
        """The balance and the available credit of the reservation's wallet, as this transaction sees them."""
        self.env["iot.wallet"].flush_model()
        rows = self.env.execute_query(SQL(
            """SELECT wallet.balance::text,
                      (wallet.balance - coalesce((SELECT sum(open.amount) FROM iot_wallet_reservation open
                                                   WHERE open.wallet_id = wallet.id AND open.state = 'open'
                                                     AND open.expires_at > %s), 0))::text
                 FROM iot_wallet_reservation hold JOIN iot_wallet wallet ON wallet.id = hold.wallet_id
                WHERE hold.id = %s""",
            fields.Datetime.now(), reservation_id,
        ))
        balance, available = rows[0]
        return {"balance": float(Decimal(balance)), "available": float(Decimal(available))}

    @api.model
    def _confirmed_answer(self, reservation_id):
        rows = self.env.execute_query(SQL(
            "SELECT confirmed_quantity::text FROM iot_wallet_reservation WHERE id = %s", reservation_id,
        ))
        return dict(self._wallet_answer(reservation_id), confirmed=True, reservation_id=reservation_id,
                    quantity=float(Decimal(rows[0][0])))

    # ------------------------------------------------------------------
    # Expiry
    # ------------------------------------------------------------------
    @api.model
    def _cron_expire(self, limit=5000):
        """Close the holds whose time is up, a chunk per call (progress API)."""
        now = fields.Datetime.now()
        self.flush_model()
        rows = self.env.execute_query(SQL(
            """UPDATE iot_wallet_reservation SET state = 'expired', closed_at = %(now)s, write_date = %(now)s
                WHERE id IN (SELECT id FROM iot_wallet_reservation
                              WHERE state = 'open' AND expires_at <= %(now)s
                              ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
               RETURNING id""",
            now=now, limit=limit,
        ))
        self._invalidate_holds()
        self.env["ir.cron"]._notify_progress(done=len(rows), remaining=int(len(rows) == limit))
        return len(rows)


def _refusal(reason, **figures):
    return {"authorized": False, "reason": reason, **{key: float(value) for key, value in figures.items()}}


def _iso(moment):
    return moment.replace(microsecond=0).isoformat() + "Z"


def _decimal_text(value):
    return ("%.6f" % Decimal(value)).rstrip("0").rstrip(".") or "0"
