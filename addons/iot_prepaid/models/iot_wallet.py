from decimal import Decimal

from odoo import Command, api, fields, models
from odoo.addons.iot_device.tools import to_decimal
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

# The entry kinds that move the balance; reservations only hold part of it (reserved).
BALANCE_KINDS = ("grant", "debit", "expiry", "adjustment")
ENTRY_COLUMNS = (
    ("wallet_id", "int"), ("grant_id", "int"), ("kind", "varchar"), ("amount", "numeric"),
    ("device_id", "int"), ("calculator_id", "int"), ("schedule_id", "int"), ("reservation_id", "int"),
    ("reason", "varchar"),
)


class IotWallet(models.Model):
    """The prepaid credit of one contract: its grants and its append-only ledger.

    ``balance`` is a cache of the ledger, written only by the ledger methods (``_post_entries``)
    in the transaction that inserts the entries, under the wallet's row lock. ``reserved`` is
    the sum of the open holds (iot.wallet.reservation).
    """

    _name = "iot.wallet"
    _description = "IoT Prepaid Wallet"
    _order = "id desc"
    _check_company_auto = True

    contract_id = fields.Many2one(
        "iot.contract", required=True, index=True, ondelete="restrict", check_company=True,
    )
    name = fields.Char(related="contract_id.display_name", string="Contract Name")
    company_id = fields.Many2one(
        related="contract_id.company_id", store=True, index=True, precompute=True,
    )
    currency_id = fields.Many2one(related="contract_id.currency_id", store=True, precompute=True)
    partner_id = fields.Many2one(related="contract_id.partner_id", store=True, string="Customer")
    balance = fields.Monetary(
        readonly=True, copy=False,
        help="Sum of the ledger's grants, debits, expiries and adjustments (tax excluded).",
    )
    # Not stored: a hold writing the wallet row would conflict with ingestion, which locks and
    # updates it (rating); the open holds are summed by one indexed query.
    reserved = fields.Monetary(
        compute="_compute_reserved", help="Credit held by open reservations of the authorization API.",
    )
    available = fields.Monetary(compute="_compute_available", help="Balance less the reserved credit.")
    credit_after_payment = fields.Boolean(
        default=True,
        help="A top-up grants credit once its invoice is paid; otherwise as soon as it is posted.",
    )
    low_balance_amount = fields.Monetary(help="Notify the customer when the available credit falls to this amount.")
    low_balance_percent = fields.Float(
        digits=(5, 2), help="Notify the customer when the available credit falls to this share of the last top-up.",
    )
    last_topup_amount = fields.Monetary(readonly=True, copy=False)
    low_balance_notified = fields.Boolean(
        readonly=True, copy=False, help="The customer was told the credit is low; cleared by the next top-up.",
    )
    blocked_no_credit = fields.Boolean(
        readonly=True, copy=False, help="The prepaid devices are blocked: no credit left.",
    )
    burn_rate = fields.Monetary(
        compute="_compute_burn_rate", help="Average credit consumed per day over the last 7 days.",
    )
    grant_ids = fields.One2many("iot.wallet.grant", "wallet_id", string="Grants")
    entry_ids = fields.One2many("iot.wallet.entry", "wallet_id", string="Ledger")
    entry_count = fields.Integer(compute="_compute_entry_count")
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("contract_unique", "unique(contract_id)", "A contract has one wallet."),
    ]

    def _compute_reserved(self):
        rows = self.env["iot.wallet.reservation"]._read_group(
            [("wallet_id", "in", self.ids), ("state", "=", "open"), ("expires_at", ">", fields.Datetime.now())],
            ["wallet_id"], ["amount:sum"],
        )
        held = {wallet.id: amount for wallet, amount in rows}
        for wallet in self:
            wallet.reserved = held.get(wallet.id, 0.0)

    @api.depends("balance", "reserved")
    def _compute_available(self):
        for wallet in self:
            wallet.available = wallet.balance - wallet.reserved

    def _compute_burn_rate(self):
        since = fields.Datetime.subtract(fields.Datetime.now(), days=7)
        rows = self.env["iot.wallet.entry"]._read_group(
            [("wallet_id", "in", self.ids), ("kind", "=", "debit"), ("create_date", ">=", since)],
            ["wallet_id"], ["amount:sum"],
        )
        spent = {wallet.id: -amount for wallet, amount in rows}
        for wallet in self:
            wallet.burn_rate = wallet.currency_id.round(spent.get(wallet.id, 0.0) / 7)

    def _compute_entry_count(self):
        rows = self.env["iot.wallet.entry"]._read_group([("wallet_id", "in", self.ids)], ["wallet_id"], ["__count"])
        counts = {wallet.id: count for wallet, count in rows}
        for wallet in self:
            wallet.entry_count = counts.get(wallet.id, 0)

    @api.model_create_multi
    def create(self, vals_list):
        # The balance and the flags are the ledger's: a wallet starts empty.
        for vals in vals_list:
            for name in ("balance", "reserved", "last_topup_amount", "low_balance_notified", "blocked_no_credit"):
                vals.pop(name, None)
        return super().create(vals_list)

    def write(self, vals):
        if {"balance", "reserved", "contract_id"} & set(vals) and not self.env.context.get("iot_wallet_ledger"):
            raise UserError(self.env._("A wallet's balance comes from its ledger: add a grant or an adjustment."))
        return super().write(vals)

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------
    def action_view_entries(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_prepaid.iot_wallet_entry_action")
        action["domain"] = [("wallet_id", "=", self.id)]
        return action

    def action_top_up(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Top Up"),
            "res_model": "iot.wallet.topup",
            "view_mode": "form",
            "target": "new",
            "context": {"default_wallet_id": self.id},
        }

    def _create_topup(self, amount, priority=10, expires_at=False, post=True):
        """The top-up invoice of ``amount`` of credit (tax excluded) and its waiting grant."""
        self.ensure_one()
        if amount <= 0:
            raise UserError(self.env._("A top-up needs a positive amount."))
        contract = self.contract_id
        product = self.env["product.product"]._iot_prepaid_credit_product(self.company_id)
        account = product.product_tmpl_id.with_company(self.company_id)._get_product_accounts()["income"]
        if account.account_type not in ("liability_current", "liability_non_current"):
            # Credit sold is owed to the customer until used: booked as income, it would be
            # counted twice (at the top-up and at the period invoice that consumes it).
            raise UserError(self.env._(
                "The product %(product)s has no customer-advance account in %(company)s (its income "
                "account is %(account)s): set a liability account such as Deferred Revenue on it.",
                product=product.display_name, company=self.company_id.name,
                account=account.display_name or self.env._("none"),
            ))
        taxes = product.taxes_id._filter_taxes_by_company(self.company_id)
        move_vals = {
            "move_type": "out_invoice",
            "partner_id": contract.partner_id.id,
            "company_id": self.company_id.id,
            "currency_id": self.currency_id.id,
            "fiscal_position_id": contract.fiscal_position_id.id,
            "invoice_payment_term_id": contract.payment_term_id.id,
            "invoice_origin": contract.display_name,
            "invoice_line_ids": [Command.create({
                "product_id": product.id,
                "name": self.env._("Prepaid credit — %s", contract.display_name),
                "quantity": 1.0,
                "price_unit": amount,
                "tax_ids": [Command.set(contract.fiscal_position_id.map_tax(taxes).ids)],
            })],
        }
        if contract.journal_id:
            move_vals["journal_id"] = contract.journal_id.id
        move = self.env["account.move"].create(move_vals)
        self.env["iot.wallet.grant"].create({
            "wallet_id": self.id, "kind": "topup", "amount": amount, "priority": priority,
            "expires_at": expires_at, "move_id": move.id, "name": self.env._("Top-up"),
        })
        if post:
            move.action_post()
        return move

    # ------------------------------------------------------------------
    # The ledger: every change of a balance goes through _post_entries, under the wallet's lock
    # ------------------------------------------------------------------
    @api.model
    def _for_contracts(self, contracts):
        """The wallets of ``contracts``, created for those that have none yet."""
        wallets = self.sudo().with_context(active_test=False).search([("contract_id", "in", contracts.ids)])
        missing = contracts - wallets.contract_id
        if missing:
            # sudo: a prepaid contract always has a wallet, whoever's usage or top-up needs it first.
            wallets |= self.sudo().create([{"contract_id": contract.id} for contract in missing])
        return wallets.sudo(False)

    def _lock(self):
        """Take the wallets' row locks (id order: no deadlock between two writers), so that
        concurrent ledger writes of one wallet happen one after the other."""
        if self.ids:
            self.env.cr.execute("SELECT id FROM iot_wallet WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [self.ids])

    @api.model
    def _post_entries(self, rows):
        """Insert ledger ``rows`` (dicts of ENTRY_COLUMNS) and move the balances, reservations
        and grants' remainders by them, in one statement. The caller holds the wallets' lock."""
        rows = [row for row in rows if row["amount"]]
        if not rows:
            return
        Grant = self.env["iot.wallet.grant"]
        for model in (self, Grant, self.env["iot.wallet.entry"]):
            model.flush_model()
        arrays = SQL(", ").join(
            SQL("%s::%s[]", [row.get(column) for row in rows], SQL(kind)) for column, kind in ENTRY_COLUMNS
        )
        names = SQL(", ").join(SQL.identifier(column) for column, _kind in ENTRY_COLUMNS)
        self.env.cr.execute(SQL(
            """
            WITH row AS (SELECT * FROM unnest(%(arrays)s) AS row(%(names)s)),
            inserted AS (
                INSERT INTO iot_wallet_entry (%(names)s, company_id, currency_id,
                                              create_uid, create_date, write_uid, write_date)
                SELECT row.*, wallet.company_id, wallet.currency_id, %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM row JOIN iot_wallet wallet ON wallet.id = row.wallet_id
                RETURNING id
            ),
            granted AS (
                UPDATE iot_wallet_grant grant_
                   SET remaining = coalesce(grant_.remaining, 0) + moved.amount,
                       state = CASE WHEN grant_.state IN ('active', 'exhausted')
                                    THEN CASE WHEN coalesce(grant_.remaining, 0) + moved.amount > 0 THEN 'active'
                                              ELSE 'exhausted' END
                                    ELSE grant_.state END
                  FROM (SELECT grant_id, sum(amount) AS amount FROM row
                         WHERE grant_id IS NOT NULL AND kind = ANY(%(balance_kinds)s) GROUP BY grant_id) moved
                 WHERE grant_.id = moved.grant_id
                RETURNING grant_.id
            )
            UPDATE iot_wallet wallet
               SET balance = coalesce(wallet.balance, 0) + moved.balance,
                   write_date = %(now)s
              FROM (SELECT wallet_id,
                           coalesce(sum(amount) FILTER (WHERE kind = ANY(%(balance_kinds)s)), 0) AS balance
                      FROM row GROUP BY wallet_id) moved
             WHERE wallet.id = moved.wallet_id
            """,
            arrays=arrays, names=names, uid=self.env.uid, now=fields.Datetime.now(),
            balance_kinds=list(BALANCE_KINDS),
        ))
        self.invalidate_model(["balance", "reserved", "available", "entry_count", "burn_rate", "write_date"])
        Grant.invalidate_model(["remaining", "state"])
        self.env["iot.wallet.entry"].invalidate_model()

    @api.model
    def _covering_grants(self, wallet_ids):
        """``{wallet id: [[grant id, remaining, device ids, calculator ids], ...]}``: the active
        grants with credit left, in the order they pay: priority, expiry (none last), age."""
        self.env["iot.wallet.grant"].flush_model()
        rows = self.env.execute_query(SQL(
            """
            SELECT grant_.wallet_id, grant_.id, grant_.remaining::text,
                   array(SELECT device_id FROM iot_wallet_grant_device_rel WHERE grant_id = grant_.id),
                   array(SELECT calculator_id FROM iot_wallet_grant_calculator_rel WHERE grant_id = grant_.id)
              FROM iot_wallet_grant grant_
             WHERE grant_.wallet_id = ANY(%s) AND grant_.state = 'active' AND grant_.remaining > 0
               AND (grant_.expires_at IS NULL OR grant_.expires_at > %s)
             ORDER BY grant_.priority, grant_.expires_at NULLS LAST, grant_.create_date, grant_.id
            """,
            list(wallet_ids), fields.Datetime.now(),
        ))
        grants = {}
        for wallet_id, grant_id, remaining, device_ids, calculator_ids in rows:
            grants.setdefault(wallet_id, []).append(
                [grant_id, Decimal(remaining), set(device_ids), set(calculator_ids)])
        return grants

    @api.model
    def _allocate(self, grants, debit, amount):
        """Take ``amount`` (> 0) from the ``grants`` of a wallet (``_covering_grants``, updated in
        place) whose scope covers ``debit``: ``([(grant id, part)], uncovered)``."""
        parts = []
        for grant in grants:
            if amount <= 0:
                break
            grant_id, remaining, device_ids, calculator_ids = grant
            if remaining <= 0:
                continue
            if device_ids and debit.get("device_id") not in device_ids:
                continue
            if calculator_ids and debit.get("calculator_id") not in calculator_ids:
                continue
            part = min(remaining, amount)
            grant[1] -= part
            amount -= part
            parts.append((grant_id, part))
        return parts, amount

    @api.model
    def _debit(self, debits):
        """Rate usage into the ledger: ``debits`` are dicts (wallet_id, device_id, calculator_id,
        schedule_id, amount, reason?), ``amount`` what the usage costs (a Decimal; negative when
        re-rating lowered it). Each is paid by the grants covering it (see _allocate); what no
        grant covers is debited all the same (the balance goes below zero) and billed with the
        period. A negative amount gives back, to the grants that paid that period and rule, the
        last paid first, after what no grant covered; what goes back to an expired grant expires
        again at once, so that all credit stays held by a grant."""
        debits = [debit for debit in debits if debit["amount"]]
        if not debits:
            return
        wallets = self.browse(sorted({debit["wallet_id"] for debit in debits}))
        wallets._lock()
        wallets._expire_grants()
        grants = self._covering_grants(wallets.ids)
        refunds = self._paid_by_grant([debit for debit in debits if debit["amount"] < 0])
        rows = []
        for debit in debits:
            base = {key: debit.get(key) for key in ("wallet_id", "device_id", "calculator_id", "schedule_id")}
            base.update(kind="debit", reason=debit.get("reason"))
            if debit["amount"] > 0:
                parts, uncovered = self._allocate(grants.get(debit["wallet_id"], []), debit, debit["amount"])
                rows += [dict(base, grant_id=grant_id, amount=-part) for grant_id, part in parts]
                if uncovered:
                    rows.append(dict(base, grant_id=None, amount=-uncovered))
                continue
            back = -debit["amount"]
            for grant_id, paid, expired in refunds.get((debit["schedule_id"], debit["calculator_id"]), []):
                part = min(paid, back)
                if part > 0:
                    rows.append(dict(base, grant_id=grant_id, amount=part))
                    if expired:
                        # Had the usage not been, this credit would have expired with its grant:
                        # given back, it expires at once (the balance does not move).
                        rows.append({"wallet_id": debit["wallet_id"], "grant_id": grant_id, "kind": "expiry",
                                     "amount": -part, "reason": self.env._("Credit given back to an expired grant")})
                    back -= part
            if back:
                rows.append(dict(base, grant_id=None, amount=back))
        self._post_entries(rows)
        wallets._check_credit()

    @api.model
    def _paid_by_grant(self, debits):
        """``{(schedule id, calculator id): [(grant id or None, amount paid, grant expired)]}``
        for the periods and rules of ``debits``: what no grant covered first, then the grants
        last paid first. An expired grant takes its part back and loses it again (_debit)."""
        if not debits:
            return {}
        self.env["iot.wallet.entry"].flush_model()
        self.env["iot.wallet.grant"].flush_model(["state"])
        rows = self.env.execute_query(SQL(
            """
            SELECT entry.schedule_id, entry.calculator_id, entry.grant_id, (-sum(entry.amount))::text,
                   coalesce(bool_or(grant_.state = 'expired'), false)
              FROM iot_wallet_entry entry
              LEFT JOIN iot_wallet_grant grant_ ON grant_.id = entry.grant_id
             WHERE entry.kind = 'debit' AND (entry.schedule_id, entry.calculator_id) IN (
                   SELECT * FROM unnest(%s::int[], %s::int[]))
             GROUP BY entry.schedule_id, entry.calculator_id, entry.grant_id
            HAVING sum(entry.amount) < 0
             ORDER BY entry.grant_id IS NOT NULL, max(entry.id) DESC
            """,
            [debit["schedule_id"] for debit in debits], [debit["calculator_id"] for debit in debits],
        ))
        paid = {}
        for schedule_id, calculator_id, grant_id, amount, expired in rows:
            paid.setdefault((schedule_id, calculator_id), []).append((grant_id, Decimal(amount), expired))
        return paid

    def _settle_uncovered(self):
        """Usage that no grant covered, in periods not invoiced yet, is paid by the credit now
        available (a top-up after the balance went below zero): the balance does not change,
        the grants' remainders do, and the period's invoice applies the credit."""
        self.env["iot.wallet.entry"].flush_model()
        rows = self.env.execute_query(SQL(
            """
            SELECT entry.wallet_id, entry.schedule_id, entry.calculator_id, entry.device_id,
                   (-sum(entry.amount))::text
              FROM iot_wallet_entry entry
              JOIN iot_invoicing_schedule schedule ON schedule.id = entry.schedule_id
             WHERE entry.wallet_id = ANY(%s) AND entry.kind = 'debit' AND entry.grant_id IS NULL
               AND schedule.state = 'planned'
             GROUP BY entry.wallet_id, entry.schedule_id, entry.calculator_id, entry.device_id
            HAVING sum(entry.amount) < 0
             ORDER BY entry.schedule_id, entry.calculator_id
            """,
            self.ids,
        ))
        if not rows:
            return
        grants = self._covering_grants(self.ids)
        entries = []
        for wallet_id, schedule_id, calculator_id, device_id, owed in rows:
            base = {"wallet_id": wallet_id, "schedule_id": schedule_id, "calculator_id": calculator_id,
                    "device_id": device_id, "kind": "debit", "reason": self.env._("Paid by credit")}
            parts, _left = self._allocate(grants.get(wallet_id, []), base, Decimal(owed))
            covered = sum((part for _grant, part in parts), Decimal(0))
            if covered:
                entries.append(dict(base, grant_id=None, amount=covered))
                entries += [dict(base, grant_id=grant_id, amount=-part) for grant_id, part in parts]
        self._post_entries(entries)

    def _expire_grants(self, now=None):
        """The remainder of the wallets' grants whose expiry has passed leaves the balance (an
        expiry entry each); the grants are expired. The caller holds the wallets' lock."""
        now = now or fields.Datetime.now()
        Grant = self.env["iot.wallet.grant"]
        Grant.flush_model()
        due = self.env.execute_query(SQL(
            """SELECT id, wallet_id, remaining::text FROM iot_wallet_grant
                WHERE wallet_id = ANY(%s) AND state IN ('active', 'exhausted', 'waiting')
                  AND expires_at <= %s ORDER BY id""",
            self.ids, now,
        ))
        if not due:
            return Grant
        self._post_entries([
            {"wallet_id": wallet_id, "grant_id": grant_id, "kind": "expiry", "amount": -Decimal(remaining),
             "reason": self.env._("Credit expired")}
            for grant_id, wallet_id, remaining in due if Decimal(remaining) > 0
        ])
        expired = Grant.browse([grant_id for grant_id, _w, _r in due])
        self.env.cr.execute("UPDATE iot_wallet_grant SET state = 'expired' WHERE id = ANY(%s)", [expired.ids])
        Grant.invalidate_model(["state"])
        return expired

    @api.model
    def _cron_expire_grants(self, limit=1000):
        """Expire the grants whose time has come, a chunk of wallets per call (progress API)."""
        self.env["iot.wallet.grant"].flush_model()
        rows = self.env.execute_query(SQL(
            """SELECT DISTINCT wallet_id FROM iot_wallet_grant
                WHERE state IN ('active', 'exhausted', 'waiting') AND expires_at <= %s
                ORDER BY wallet_id LIMIT %s""",
            fields.Datetime.now(), limit,
        ))
        wallets = self.browse([wallet_id for (wallet_id,) in rows])
        wallets._lock()
        wallets._expire_grants()
        wallets._check_credit()
        self.env["ir.cron"]._notify_progress(done=len(wallets), remaining=int(len(wallets) == limit))
        return wallets

    def _adjust(self, amount, reason, grant=None):
        """A manual correction of the balance (Billing group, with a reason): a positive amount
        adds to ``grant`` (required: credit is spent through grants), a negative one is taken
        from ``grant`` or, without one, from the grants in the order they pay."""
        self.ensure_one()
        if not self.env.user.has_group("iot_contract.group_iot_billing"):
            raise AccessError(self.env._("Only the IoT Billing group may adjust a wallet."))
        if not (reason or "").strip():
            raise UserError(self.env._("An adjustment needs a reason."))
        amount = self.currency_id.round(float(amount))
        amount = to_decimal(amount)
        if not amount:
            raise UserError(self.env._("An adjustment needs an amount."))
        if grant and grant.wallet_id != self:
            raise UserError(self.env._("The grant %s is not in this wallet.", grant.display_name))
        if amount > 0 and not grant:
            raise UserError(self.env._("A positive adjustment adds to a grant: choose the grant."))
        if grant and grant.state in ("waiting", "expired"):
            raise UserError(self.env._("Grant %s is not active.", grant.display_name))
        self._lock()
        base = {"wallet_id": self.id, "kind": "adjustment", "reason": reason.strip()}
        if grant:
            if amount < 0 and to_decimal(grant.remaining) < -amount:
                raise UserError(self.env._("Grant %s has only %s left.", grant.display_name, grant.remaining))
            rows = [dict(base, grant_id=grant.id, amount=amount)]
        else:
            parts, left = self._allocate(self._covering_grants(self.ids).get(self.id, []), {}, -amount)
            if left:
                raise UserError(self.env._("The wallet has only %s of credit to take.", -amount - left))
            rows = [dict(base, grant_id=grant_id, amount=-part) for grant_id, part in parts]
        self._post_entries(rows)
        if amount > 0:
            self._settle_uncovered()
        self._check_credit()
        return True

    # ------------------------------------------------------------------
    # Rating as readings arrive
    # ------------------------------------------------------------------
    @api.model
    def _rate_usage(self, touched):
        """Rate the prepaid usage an ingestion batch just added (``touched``: ``{device id:
        (first, last timestamp)}``, see iot.usage._iot_usage_ingested), in its transaction: the
        planned periods of prepaid items holding those readings are re-valued."""
        if not self._any_prepaid():
            return
        # sudo: rating follows from the ingestion the caller may do; it reads the plans' prices
        # and writes the ledger, which an Integration user may not touch otherwise.
        self = self.sudo()
        self.env["iot.invoicing.schedule"].flush_model()
        rows = self.env.execute_query(SQL(
            """
            SELECT DISTINCT schedule.id, schedule.contract_id
              FROM unnest(%s::int[], %s::timestamp[], %s::timestamp[]) AS added(device_id, first_at, last_at)
              JOIN iot_invoicing_schedule schedule ON schedule.device_id = added.device_id
               AND schedule.state = 'planned' AND schedule.part IN ('all', 'usage')
              JOIN iot_contract contract ON contract.id = schedule.contract_id
              JOIN product_product product ON product.id = schedule.product_id
              JOIN product_template template ON template.id = product.product_tmpl_id
             WHERE added.last_at >= local_midnight(schedule.date_from, contract.tz)
               AND added.first_at < local_midnight(schedule.date_to + 1, contract.tz)
               AND %s
            """,
            list(touched), [first for first, _last in touched.values()], [last for _first, last in touched.values()],
            SQL(self.env["iot.contract"]._iot_prepaid_sql("contract", "template")),
        ))
        if rows:
            self._rate_schedules(
                self.env["iot.invoicing.schedule"].browse(sorted({schedule_id for schedule_id, _c in rows})),
                self.env["iot.contract"].browse({contract_id for _s, contract_id in rows}),
            )

    @api.model
    def _any_prepaid(self):
        """Whether anything is prepaid at all: the postpaid ingestion pays one tiny query."""
        self.env["iot.contract"].flush_model(["iot_prepaid"])
        self.env["product.template"].flush_model(["iot_prepaid"])
        return bool(self.env.execute_query(SQL(
            """SELECT 1 WHERE EXISTS (SELECT 1 FROM iot_contract WHERE iot_prepaid = 'prepaid')
                  OR EXISTS (SELECT 1 FROM product_template WHERE iot_prepaid)"""
        )))

    @api.model
    def _rate_schedules(self, schedules, contracts, final=None):
        """Debit the wallets of ``contracts`` with what their prepaid ``schedules`` (planned
        periods) cost so far, less what was debited for them already, per period and rule.

        The amounts are the billing valuation's, by the same code: the period's scope as
        billing builds it (``iot.usage.valuation._usage_scopes``), measured over the period's
        days as they stand, priced by ``iot.usage.calculator._evaluate`` (tiers across the
        period, included quantity, minimum). ``final``: ``{(schedule id, calculator id): amount}``
        the billing valued, used instead (the period is being invoiced). The wallets are locked
        before anything is measured: a concurrent batch of the same wallet waits, then sees
        these readings (or is retried by Odoo on a serialization failure)."""
        wallets = self._for_contracts(contracts)
        wallets._lock()
        wallet_by_contract = {wallet.contract_id.id: wallet.id for wallet in wallets}
        Valuation = self.env["iot.usage.valuation"]
        if final is None:
            scopes = Valuation._usage_scopes(schedules, to_date=True)
            measures = self.env["iot.usage.calculator"]._evaluate(scopes)
            costs = {
                (scope.key, calculator.id): measures[scope.key, calculator.id].amount
                for scope in scopes for calculator in scope.calculators
            }
        else:
            costs = dict(final)
        self.env["iot.wallet.entry"].flush_model()
        debited = {
            (schedule_id, calculator_id): Decimal(amount)
            for schedule_id, calculator_id, amount in self.env.execute_query(SQL(
                """SELECT schedule_id, calculator_id, (-sum(amount))::text FROM iot_wallet_entry
                    WHERE schedule_id = ANY(%s) AND kind = 'debit' GROUP BY schedule_id, calculator_id""",
                schedules.ids,
            ))
        }
        facts = {
            schedule_id: (contract_id, device_id)
            for schedule_id, contract_id, device_id in self.env.execute_query(SQL(
                "SELECT id, contract_id, device_id FROM iot_invoicing_schedule WHERE id = ANY(%s)", schedules.ids,
            ))
        }
        debits = []
        for key in sorted(set(costs) | set(debited)):
            difference = Decimal(costs.get(key, 0)) - debited.get(key, Decimal(0))
            if difference:
                contract_id, device_id = facts[key[0]]
                debits.append({
                    "wallet_id": wallet_by_contract[contract_id], "device_id": device_id,
                    "schedule_id": key[0], "calculator_id": key[1], "amount": difference,
                })
        self._debit(debits)

    # ------------------------------------------------------------------
    # Thresholds: low credit, no credit
    # ------------------------------------------------------------------
    def _low_balance_level(self):
        """The available credit at or below which the customer is told: the larger of the
        amount and the percent of the last top-up; None when neither is set."""
        self.ensure_one()
        levels = []
        if self.low_balance_amount:
            levels.append(self.low_balance_amount)
        if self.low_balance_percent and self.last_topup_amount:
            levels.append(self.currency_id.round(self.last_topup_amount * self.low_balance_percent / 100))
        return max(levels) if levels else None

    def _check_credit(self):
        """After every ledger change (the caller holds the wallets' lock): tell the customer and
        the platform when the credit is low, block the prepaid devices when none is available,
        unblock them once it is above zero again. Commands go out after commit."""
        self.invalidate_recordset(["balance", "reserved", "available"])
        to_notify, to_block, to_unblock, recovered = (self.browse() for _i in range(4))
        for wallet in self.sudo():
            level = wallet._low_balance_level()
            available = wallet.available
            if wallet.currency_id.compare_amounts(available, 0) <= 0:
                to_block |= wallet.filtered(lambda w: not w.blocked_no_credit)
            elif wallet.blocked_no_credit:
                to_unblock |= wallet
            if level is not None and wallet.currency_id.compare_amounts(available, level) <= 0:
                to_notify |= wallet.filtered(lambda w: not w.low_balance_notified)
            elif wallet.low_balance_notified:
                recovered |= wallet
        if recovered:
            recovered.sudo().with_context(iot_wallet_ledger=True).write({"low_balance_notified": False})
        if to_notify:
            to_notify.sudo()._notify_low_balance()
        if to_block:
            to_block.sudo()._block_no_credit()
        if to_unblock:
            to_unblock.sudo()._unblock_credit()
        return True

    def _prepaid_devices(self):
        """The devices of the wallets' prepaid contract items, by wallet."""
        items = self.env["iot.contract.item"].search([("contract_id", "in", self.contract_id.ids),
                                                       ("device_id", "!=", False)])
        items = items.filtered(lambda item: item._iot_is_prepaid())
        return {wallet: items.filtered(lambda item, wallet=wallet: item.contract_id == wallet.contract_id).device_id
                for wallet in self}

    def _notify_low_balance(self):
        self.with_context(iot_wallet_ledger=True).write({"low_balance_notified": True})
        template = self.env.ref("iot_prepaid.iot_wallet_mail_template_low_balance")
        Command = self.env["iot_billing.device.command"]
        for wallet, devices in self._prepaid_devices().items():
            template.send_mail(wallet.id)
            description = self.env._("Low credit: %s available", wallet.currency_id.format(wallet.available))
            running = devices.filtered(lambda device: device.state in ("active", "suspended"))
            running._log_events("low_balance", description=description)
            if running:
                Command._enqueue(running, "low_balance", {
                    "balance": wallet.balance, "available": wallet.available, "currency": wallet.currency_id.name,
                })

    def _block_no_credit(self):
        """No credit available: the prepaid devices are blocked (suspended, reason no credit; a
        ``block`` command each, sent after commit), as dunning blocks for unpaid."""
        self.with_context(iot_wallet_ledger=True).write({"blocked_no_credit": True})
        for devices in self._prepaid_devices().values():
            active = devices.filtered(lambda device: device.state == "active" and not device.iot_no_credit)
            if "iot_never_block" in active._fields:  # iot_dunning's exemption, when installed
                active = active.filtered(lambda device: not device.iot_never_block)
            if active:
                active._apply_transition("suspend", self.env._("Blocked: no credit"))
                active.write({"iot_no_credit": True})

    def _unblock_credit(self):
        """Credit is available again: the devices blocked for no credit resume (``unblock``
        after commit), in the transaction that brought the credit (the payment's)."""
        self.with_context(iot_wallet_ledger=True).write({"blocked_no_credit": False})
        for devices in self._prepaid_devices().values():
            blocked = devices.filtered(lambda device: device.iot_no_credit and device.state == "suspended")
            if blocked:
                blocked.with_context(iot_prepaid_release=True)._apply_transition(
                    "resume", self.env._("Unblocked: credit available"))
