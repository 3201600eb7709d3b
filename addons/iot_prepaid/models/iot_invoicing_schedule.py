from decimal import Decimal

from odoo import fields, models
from odoo.tools import SQL


class IotInvoicingSchedule(models.Model):
    _inherit = "iot.invoicing.schedule"

    iot_credit_line_id = fields.Many2one(
        "account.move.line", string="Credit Applied Line", readonly=True, copy=False, index="btree_not_null",
        ondelete="set null", help="The invoice line that deducted the prepaid credit this period used.",
    )

    def _iot_prepaid_schedules(self):
        """The usage schedules among these whose item is prepaid (one query)."""
        if not self:
            return self.browse()
        self.flush_model(["contract_id", "product_id", "part"])
        self.env["iot.contract"].flush_model(["iot_prepaid"])
        rows = self.env.execute_query(SQL(
            """SELECT schedule.id FROM iot_invoicing_schedule schedule
                 JOIN iot_contract contract ON contract.id = schedule.contract_id
                 JOIN product_product product ON product.id = schedule.product_id
                 JOIN product_template template ON template.id = product.product_tmpl_id
                WHERE schedule.id = ANY(%s) AND schedule.part != 'fee' AND %s""",
            self.ids, SQL(self.env["iot.contract"]._iot_prepaid_sql("contract", "template")),
        ))
        return self.browse([schedule_id for (schedule_id,) in rows])

    def _iot_value_usage(self, run):
        """The ledger follows what billing valued: a reading rated after the last batch (late
        usage, events) is debited now, so that the period's debits are its usage amounts."""
        result = super()._iot_value_usage(run)
        prepaid = self._iot_prepaid_schedules()
        if prepaid:
            valued = self.env["iot.usage.valuation"]._read_group(
                [("schedule_id", "in", prepaid.ids)], ["schedule_id", "calculator_id"], ["amount:sum"],
            )
            final = {(schedule.id, calculator.id): Decimal(str(amount)) for schedule, calculator, amount in valued}
            self.env["iot.wallet"].sudo()._rate_schedules(prepaid, prepaid.contract_id, final=final)
        return result

    def _iot_credit_applied(self):
        """``{schedule id: credit}``: what grants paid of each prepaid period (never more than
        its debits, which are its usage amounts)."""
        self.env["iot.wallet.entry"].flush_model()
        rows = self.env.execute_query(SQL(
            """SELECT schedule_id, (-sum(amount))::text FROM iot_wallet_entry
                WHERE schedule_id = ANY(%s) AND kind = 'debit' AND grant_id IS NOT NULL
                GROUP BY schedule_id HAVING sum(amount) < 0""",
            self.ids,
        ))
        return {schedule_id: Decimal(amount) for schedule_id, amount in rows}

    def _iot_invoice_line_parts(self):
        """A prepaid period's invoice bills its usage as a postpaid one would, less the credit
        that paid it: one negative part on the prepaid credit product."""
        parts = super()._iot_invoice_line_parts()
        prepaid = self._iot_prepaid_schedules()
        credits = prepaid._iot_credit_applied() if prepaid else {}
        if not credits:
            return parts
        label = self.env._("Prepaid credit applied — %(item)s — %(date_from)s to %(date_to)s")
        products = {}  # one look-up per company, not per period
        for schedule in prepaid.filtered(lambda schedule: schedule.id in credits):
            credit = credits[schedule.id]
            if schedule.company_id not in products:
                products[schedule.company_id] = self.env["product.product"]._iot_prepaid_credit_product(
                    schedule.company_id)
            product = products[schedule.company_id]
            parts.append({
                "schedule_id": schedule.id,
                "kind": "usage",
                "product_id": product.id,
                "name": label % {"item": schedule.contract_item_id.name, "date_from": schedule.date_from,
                                 "date_to": schedule.date_to},
                "quantity": 1.0,
                "price_unit": float(-credit),
                "amount": -credit,
                "currency_id": schedule.currency_id.id,
            })
        return parts

    def _iot_link_invoice_lines(self, line_parts):
        """Each period's credit applied is linked to the invoice line that deducts it, found by
        its product: the staged parts of a contract billed in steps keep only their schedule,
        kind and valuation, so the line, not the part, says it is the credit's."""
        super()._iot_link_invoice_lines(line_parts)
        line_ids = [line_id for line_id, _parts in line_parts]
        if not line_ids:
            return
        self.env["account.move.line"].flush_model(["product_id"])
        self.env["product.template"].flush_model(["iot_prepaid_credit"])
        credit_lines = {line_id for (line_id,) in self.env.execute_query(SQL(
            """SELECT line.id FROM account_move_line line
                 JOIN product_product product ON product.id = line.product_id
                 JOIN product_template template ON template.id = product.product_tmpl_id
                WHERE line.id = ANY(%s) AND template.iot_prepaid_credit""",
            line_ids,
        ))}
        pairs = {part["schedule_id"]: line_id for line_id, parts in line_parts if line_id in credit_lines
                 for part in parts}
        if not pairs:
            return
        self.flush_model(["iot_credit_line_id"])
        self.env.cr.execute(SQL(
            """UPDATE iot_invoicing_schedule schedule SET iot_credit_line_id = row.line_id
                 FROM unnest(%s::int[], %s::int[]) AS row(id, line_id)
                WHERE schedule.id = row.id""",
            list(pairs), list(pairs.values()),
        ))
        self.invalidate_model(["iot_credit_line_id"])

    def _iot_state_changed(self, state):
        result = super()._iot_state_changed(state)
        if state == "invoiced":
            self._iot_prepaid_settle_billed()
        elif state == "planned":
            self.filtered("iot_credit_line_id").iot_credit_line_id = False
        return result

    def _iot_prepaid_settle_billed(self):
        """Usage no grant paid was billed on the period's invoice: it leaves the ledger (an
        adjustment each), so that the balance counts only the credit left and what is still owed."""
        if not self:
            return
        self.env["iot.wallet.entry"].flush_model()
        rows = self.env.execute_query(SQL(
            """SELECT wallet_id, schedule_id, device_id, (-sum(amount))::text FROM iot_wallet_entry
                WHERE schedule_id = ANY(%s) AND grant_id IS NULL AND kind IN ('debit', 'adjustment')
                GROUP BY wallet_id, schedule_id, device_id HAVING sum(amount) < 0""",
            self.ids,
        ))
        if not rows:
            return
        Wallet = self.env["iot.wallet"].sudo()  # a consequence of the invoicing the caller may do
        wallets = Wallet.browse(sorted({row[0] for row in rows}))
        wallets._lock()
        Wallet._post_entries([
            {"wallet_id": wallet_id, "schedule_id": schedule_id, "device_id": device_id, "kind": "adjustment",
             "amount": Decimal(owed), "reason": self.env._("Usage beyond the credit, billed on the period's invoice")}
            for wallet_id, schedule_id, device_id, owed in rows
        ])
        wallets._check_credit()
