import logging
from datetime import timedelta

import psycopg2

from odoo import Command, api, fields, models
from odoo.addons.iot_contract.tools import CommittedSteps, Outcome, is_concurrency_error
from odoo.tools import float_compare, float_is_zero, format_amount

_logger = logging.getLogger(__name__)

# Contracts evaluated per committed chunk of the daily cron.
CONTRACTS_PER_CHUNK = 200
UNPAID_STATES = ("not_paid", "partial")
# Bulk device transitions of dunning: no chatter tracking per device (a fleet is thousands).
BULK_CONTEXT = {"tracking_disable": True, "mail_create_nolog": True, "iot_event_origin": "system"}


class IotContract(models.Model):
    _inherit = "iot.contract"

    iot_dunning_policy_id = fields.Many2one(
        "iot.dunning.policy",
        string="Dunning Policy",
        check_company=True,
        help="Overrides the company's dunning policy for this contract.",
    )
    iot_never_block = fields.Boolean(
        string="Never Block Devices",
        help="Dunning sends reminders and fees but never suspends the devices of this contract.",
    )
    iot_dunning_level_id = fields.Many2one(
        "iot.dunning.level", string="Dunning Level", readonly=True, copy=False, index="btree_not_null"
    )
    iot_dunning_blocked_since = fields.Datetime(
        string="Devices Blocked Since", readonly=True, copy=False, index="btree_not_null"
    )
    iot_dunning_evaluated_on = fields.Date(string="Dunning Evaluated On", readonly=True, copy=False)
    iot_dunning_line_ids = fields.One2many("iot.dunning.line", "contract_id", string="Dunning History")
    iot_overdue_amount = fields.Monetary(
        string="Overdue Amount",
        compute="_compute_iot_dunning_status",
        currency_field="iot_company_currency_id",
        groups="account.group_account_invoice",
    )
    iot_company_currency_id = fields.Many2one(related="company_id.currency_id", string="Company Currency")
    iot_dunning_next_level_id = fields.Many2one(
        "iot.dunning.level", string="Next Dunning Level", compute="_compute_iot_dunning_status"
    )
    iot_dunning_next_date = fields.Date(string="Next Dunning Date", compute="_compute_iot_dunning_status")
    iot_blocked_device_count = fields.Integer(string="Blocked Devices", compute="_compute_iot_dunning_status")
    # What the reminder e-mail lists (see data/iot_dunning_mail_template.xml).
    iot_overdue_invoice_ids = fields.Many2many(
        "account.move",
        string="Overdue Invoices",
        compute="_compute_iot_dunning_status",
        groups="account.group_account_invoice",
    )
    iot_devices_to_block_ids = fields.Many2many(
        "iot_billing.device", string="Devices to Block", compute="_compute_iot_dunning_status"
    )
    iot_dunning_recipient_id = fields.Many2one(
        "res.partner",
        string="Dunning Recipient",
        compute="_compute_iot_dunning_recipient_id",
        help="Who the reminders go to: the partner the contract's invoices go to (its payer).",
    )
    iot_block_date = fields.Date(
        string="Blocking Date",
        compute="_compute_iot_dunning_status",
        help="When the devices will be blocked if the overdue invoices stay unpaid.",
    )

    def _compute_iot_dunning_status(self):
        today = fields.Date.context_today(self)
        for contract in self:
            situation = contract._iot_dunning_situation(today)
            contract.iot_overdue_amount = situation["amount"]
            contract.iot_dunning_next_level_id = situation["next_level"]
            contract.iot_dunning_next_date = situation["next_date"]
            contract.iot_blocked_device_count = len(contract._iot_blocked_devices())
            contract.iot_overdue_invoice_ids = situation["invoices"]
            contract.iot_block_date = contract._iot_next_block_date(situation)
            contract.iot_devices_to_block_ids = (
                contract._iot_devices_to_block(situation) if contract.iot_block_date else False
            )

    # ------------------------------------------------------------------
    # Situation
    # ------------------------------------------------------------------
    def _compute_iot_dunning_recipient_id(self):
        for contract in self:
            contract.iot_dunning_recipient_id = contract._iot_invoice_partner()

    def _iot_dunning_policy(self):
        self.ensure_one()
        return self.iot_dunning_policy_id or self.company_id.iot_dunning_policy_id

    def _iot_overdue_invoices(self, today):
        """Posted, unpaid IoT invoices of the contract due before ``today``, oldest due first."""
        self.ensure_one()
        # sudo: dunning reads the contract's invoices whoever triggers it (a payment, the cron).
        return (
            self.env["account.move"]
            .sudo()
            .search(
                [
                    ("iot_schedule_ids.contract_id", "=", self.id),
                    ("move_type", "=", "out_invoice"),
                    ("state", "=", "posted"),
                    ("payment_state", "in", UNPAID_STATES),
                    ("invoice_date_due", "<", today),
                ],
                order="invoice_date_due, id",
            )
        )

    def _iot_dunning_situation(self, today):
        """Where the contract stands on ``today``: its overdue invoices and amount, the
        level of its oldest overdue invoice (False below the policy's minimum), the
        levels reached so far for that invoice, and the next level and its date."""
        self.ensure_one()
        policy = self._iot_dunning_policy()
        invoices = self._iot_overdue_invoices(today)
        currency = self.company_id.currency_id
        amount = currency.round(sum(invoices.mapped("amount_residual_signed")))
        situation = {
            "policy": policy,
            "invoices": invoices,
            "amount": amount,
            "reference": invoices[:1],
            "reached": self.env["iot.dunning.level"],
            "next_level": self.env["iot.dunning.level"],
            "next_date": False,
        }
        if (
            not policy
            or not invoices
            or float_is_zero(amount, precision_rounding=currency.rounding)
            or float_compare(amount, policy.minimum_amount, precision_rounding=currency.rounding) < 0
        ):
            return situation
        due = invoices[0].invoice_date_due
        days_overdue = (today - due).days
        levels = policy.level_ids.sorted("days_after_due")
        situation["reached"] = levels.filtered(lambda level: level.days_after_due <= days_overdue)
        upcoming = levels - situation["reached"]
        if upcoming:
            situation["next_level"] = upcoming[0]
            situation["next_date"] = due + timedelta(days=upcoming[0].days_after_due)
        return situation

    def _iot_devices_to_block(self, situation):
        """Active devices the policy would block (never-block devices and contracts excluded)."""
        self.ensure_one()
        Device = self.env["iot_billing.device"].sudo()
        if self.iot_never_block or not situation["policy"]:
            return Device
        if situation["policy"].device_scope == "invoiced":
            device_ids = situation["invoices"].sudo().iot_schedule_ids.device_id.ids
        else:
            device_ids = self._iot_contract_device_ids()
        return Device.search(
            [
                ("id", "in", device_ids),
                ("state", "=", "active"),
                ("iot_never_block", "=", False),
                ("company_id", "=", self.company_id.id),
            ]
        )

    def _iot_contract_device_ids(self):
        """Ids of the devices on these contracts' items.

        A query of its own rather than a ``contract_item_ids.contract_id`` domain on
        devices: with the statistics of freshly filled tables, PostgreSQL runs that
        semi-join as a nested loop re-scanning the contract's items per device
        (35 s for 10,000 devices, measured); a list of ids keeps it linear.
        """
        [(device_ids,)] = (
            self.env["iot.contract.item"]
            .sudo()
            ._read_group([("contract_id", "in", self.ids), ("device_id", "!=", False)], [], ["device_id:array_agg"])
        )
        return device_ids or []

    def _iot_blocked_devices(self):
        """Devices of the contracts suspended for unpaid."""
        return (
            self.env["iot_billing.device"]
            .sudo()
            .search(
                [
                    ("id", "in", self._iot_contract_device_ids()),
                    ("state", "=", "suspended"),
                    ("iot_suspension_reason", "=", "unpaid"),
                ]
            )
        )

    def _iot_next_block_date(self, situation):
        """When the devices will be blocked (for reminders sent before), or False."""
        blocking = (
            situation["policy"].level_ids.filtered("block").sorted("days_after_due")[:1]
            if situation["policy"]
            else False
        )
        if not blocking or not situation["reference"] or blocking in situation["reached"]:
            return False
        return situation["reference"].invoice_date_due + timedelta(days=blocking.days_after_due)

    # ------------------------------------------------------------------
    # Evaluation
    # ------------------------------------------------------------------
    def action_iot_dunning_evaluate(self):
        """Button (and RPC): apply the dunning policy today to these contracts."""
        self.check_access("write")
        self._iot_dunning_evaluate(fields.Date.context_today(self))
        return True

    def _iot_dunning_evaluate(self, today):
        """Reach the due levels once per invoice (e-mail, fee, block); release
        the devices of contracts no longer at a blocking level. Idempotent."""
        # sudo: dunning acts on devices, invoices and chatter whoever runs it; access
        # to the contracts was checked by the caller.
        for contract in self.sudo():
            situation = contract._iot_dunning_situation(today)
            done = contract.iot_dunning_line_ids.filtered(
                lambda line, reference=situation["reference"]: line.invoice_id == reference
            ).level_id
            new_levels = situation["reached"] - done
            if new_levels:
                contract._iot_dunning_reach(new_levels, situation, today)
            if situation["reached"].filtered("block"):
                contract._iot_dunning_block(situation)
            else:
                contract._iot_dunning_release()
            contract.write(
                {
                    "iot_dunning_level_id": situation["reached"][-1:].id,
                    "iot_dunning_evaluated_on": today,
                }
            )
        return True

    def _iot_dunning_reach(self, levels, situation, today):
        """Record the levels reached for the oldest overdue invoice; the highest one
        speaks (a contract found late at level 3 gets one e-mail, not three)."""
        self.ensure_one()
        blocked = self._iot_dunning_block(situation) if levels.filtered("block") else self.env["iot_billing.device"]
        lines = self.env["iot.dunning.line"].create(
            [
                {
                    "contract_id": self.id,
                    "invoice_id": situation["reference"].id,
                    "level_id": level.id,
                    "date": today,
                    "overdue_amount": situation["amount"],
                    "blocked_count": len(blocked) if level.block else 0,
                    "fee_product_id": level.fee_product_id.id,
                }
                for level in levels
            ]
        )
        top = levels[-1]
        note = self.env._(
            "Dunning for invoice %(invoice)s, level(s) reached: %(levels)s; %(count)s overdue invoice(s), "
            "%(amount)s overdue.",
            invoice=situation["reference"].name,
            levels=", ".join(levels.mapped("display_name")),
            count=len(situation["invoices"]),
            amount=format_amount(self.env, situation["amount"], self.company_id.currency_id),
        )
        if blocked:
            note += " " + self.env._("%(count)s device(s) blocked.", count=len(blocked))
        self.message_post(body=note, message_type="notification", subtype_xmlid="mail.mt_note")
        if top.mail_template_id:
            self.with_context(iot_dunning_level_id=top.id).message_post_with_source(
                top.mail_template_id,
                partner_ids=self._iot_invoice_partner().ids,
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
            )
        return lines

    def _iot_dunning_block(self, situation):
        """Suspend the contract's devices for unpaid; returns the devices blocked now."""
        self.ensure_one()
        devices = self._iot_devices_to_block(situation)
        if devices:
            devices.with_context(iot_suspension_reason="unpaid", **BULK_CONTEXT)._apply_transition(
                "suspend",
                self.env._("Blocked for unpaid invoice %(invoice)s", invoice=situation["reference"].name),
            )
        if not self.iot_dunning_blocked_since and (devices or self._iot_blocked_devices()):
            self.iot_dunning_blocked_since = fields.Datetime.now()
        return devices

    def _iot_dunning_release(self):
        """Resume the devices blocked for unpaid; devices suspended by hand stay suspended."""
        released = self.env["iot_billing.device"]
        for contract in self:
            devices = contract._iot_blocked_devices()
            if devices:
                devices.with_context(iot_dunning_release=True, **BULK_CONTEXT)._apply_transition(
                    "resume", self.env._("Released: overdue invoices paid")
                )
                contract.message_post(
                    body=self.env._("Overdue invoices paid: %(count)s device(s) released.", count=len(devices)),
                    message_type="notification",
                    subtype_xmlid="mail.mt_note",
                )
                released |= devices
        self.filtered("iot_dunning_blocked_since").write({"iot_dunning_blocked_since": False})
        return released

    def _iot_dunning_after_payment(self):
        """Called in the transaction that reconciles a payment with IoT invoices:
        contracts no longer at a blocking level get their devices back at once."""
        today = fields.Date.context_today(self)
        for contract in self.sudo().filtered("iot_dunning_blocked_since"):
            situation = contract._iot_dunning_situation(today)
            if not situation["reached"].filtered("block"):
                contract._iot_dunning_release()
                contract.iot_dunning_level_id = situation["reached"][-1:]

    def _iot_extra_invoice_lines(self, invoice_date):
        """The dunning fees not invoiced yet ride on the contract's next invoice, marked invoiced
        now (a contract invoiced for two periods in one run carries each fee once).
        Priced and taxed by Odoo from the product, like a line typed by hand."""
        lines = super()._iot_extra_invoice_lines(invoice_date)
        fees = (
            self.env["iot.dunning.line"]
            .sudo()
            .search(
                [("contract_id", "=", self.id), ("fee_product_id", "!=", False), ("fee_invoiced", "=", False)],
                order="id",
            )
        )
        fees.write({"fee_invoiced": True})
        return lines + [
            {
                "display_type": "product",
                "product_id": fee.fee_product_id.id,
                "quantity": 1,
                "name": self.env._(
                    "%(fee)s: %(level)s, invoice %(invoice)s",
                    fee=fee.fee_product_id.display_name,
                    level=fee.level_id.name,
                    invoice=fee.invoice_id.name,
                ),
                "iot_dunning_line_ids": [Command.set(fee.ids)],
            }
            for fee in fees
        ]

    @api.model
    def _iot_dunning_due_contracts(self, today):
        """Contracts the cron still has to evaluate on ``today``: with an overdue IoT invoice
        or at a dunning level, not evaluated yet today (a re-run changes nothing)."""
        overdue = (
            self.env["iot.invoicing.schedule"]
            .sudo()
            ._read_group(
                [
                    ("invoice_id.move_type", "=", "out_invoice"),
                    ("invoice_id.state", "=", "posted"),
                    ("invoice_id.payment_state", "in", UNPAID_STATES),
                    ("invoice_id.invoice_date_due", "<", today),
                ],
                ["contract_id"],
            )
        )
        return self.sudo().search(
            [
                "|",
                ("id", "in", [contract.id for (contract,) in overdue]),
                ("iot_dunning_level_id", "!=", False),
                "|",
                ("iot_dunning_evaluated_on", "=", False),
                ("iot_dunning_evaluated_on", "<", today),
            ],
            order="id",
        )

    @api.model
    def _cron_iot_dunning(self):
        """Daily: evaluate every due contract (``_iot_dunning_due_contracts``), one chunk of
        ``CONTRACTS_PER_CHUNK`` contracts per call, committed by ``CommittedSteps``; Odoo calls
        again at once while contracts are left (progress API).

        A contract whose evaluation fails is recorded as evaluated today: looked at again
        tomorrow, not in a loop. A concurrency error (a payment or a device update committed
        meanwhile: serialization failure, lock not available, deadlock) is no failure of the
        contract: the chunk is rolled back and evaluated again on a fresh snapshot, its
        contracts still due.
        """
        today = fields.Date.context_today(self)
        steps = CommittedSteps(self.env, crons=self.env.ref("iot_dunning.iot_dunning_cron", raise_if_not_found=False))

        def evaluate_chunk():
            if steps.done:
                return Outcome.FINISHED  # one chunk per call: Odoo calls again for the rest
            chunk = self._iot_dunning_due_contracts(today)[:CONTRACTS_PER_CHUNK]
            if not chunk:
                return Outcome.FINISHED
            for contract in chunk:
                try:
                    with self.env.cr.savepoint():
                        contract.with_company(contract.company_id)._iot_dunning_evaluate(today)
                except Exception as error:  # noqa: BLE001 - one failing contract must not stop the others
                    if is_concurrency_error(error) or isinstance(error, psycopg2.OperationalError):
                        # Not the contract's fault: the driver rolls the chunk back and retries it
                        # (a snapshot older than the concurrent commit would fail again).
                        raise
                    _logger.exception("Dunning of contract %s failed", contract.id)
                    self.env.invalidate_all()
                    contract.iot_dunning_evaluated_on = today  # retried tomorrow, not in a loop
            return Outcome.DONE

        steps.run(evaluate_chunk)
        steps.report(len(self._iot_dunning_due_contracts(today)))
