from odoo import api, fields, models
from odoo.addons.iot_device.tools import to_decimal
from odoo.tools import SQL, create_index

from ..tools import billing_sql
from ..tools.locks import RowLock, claim_rows


class IotBillingRunPart(models.Model):
    """One part (a fee, a usage amount) of a schedule of a contract billed in steps, valued and
    waiting for its invoice line; deleted once linked to it. A schedule with nothing to bill
    has one row without line, so that it is closed with its period.

    This model owns the *stage* and *link* steps (``iot.billing.engine``, *contracts billed in
    steps*); rows are written and read with SQL (``tools/billing_sql.py``), tens of thousands
    per step.
    """

    _name = "iot.billing.run.part"
    _description = "IoT Billing Run Part Being Invoiced"
    _order = "id"
    _log_access = False

    run_id = fields.Many2one("iot.billing.run", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="run_id.company_id", store=True)
    contract_id = fields.Many2one("iot.contract", required=True, ondelete="cascade")
    invoice_date = fields.Date(required=True)
    schedule_id = fields.Many2one("iot.invoicing.schedule", required=True, ondelete="cascade", index=True)
    line_id = fields.Many2one("iot.billing.run.line", ondelete="cascade", index="btree_not_null")
    kind = fields.Char(help="fixed or usage; empty for a schedule with nothing to bill.")
    valuation_id = fields.Integer(help="The usage valuation billed by this part (iot_usage).")
    device_id = fields.Many2one("iot_billing.device", ondelete="set null")
    date_from = fields.Date()
    date_to = fields.Date()
    quantity = fields.Float(digits=(20, 6))
    price_unit = fields.Float(digits=(20, 10))
    amount = fields.Float(digits=(20, 6))

    def init(self):
        # Each step reads its contract's parts in schedule order.
        create_index(
            self.env.cr, "iot_billing_run_part_contract_idx", self._table, ["run_id", "contract_id", "schedule_id"]
        )

    @api.model
    def _stage(self, run, contract, schedule_ids):
        """Step *stage*: value a slice of the contract's due schedules (locked by the caller),
        store their parts with the key of the invoice line each goes to, and mark the
        schedules *being invoiced*."""
        contract._iot_check_price_precision()
        schedules = self.env["iot.invoicing.schedule"].browse(schedule_ids)
        schedules._iot_value_usage(run)
        parts = schedules._iot_invoice_line_parts()
        keys = [repr(key) for key in contract._iot_line_keys(parts)] if parts else []
        invoice_dates = dict(schedules.mapped(lambda schedule: (schedule.id, schedule.invoice_date)))
        line_keys = sorted({(invoice_dates[part["schedule_id"]], key) for part, key in zip(parts, keys, strict=True)})
        Line = self.env["iot.billing.run.line"]
        Line.flush_model()
        ids = {"run": run.id, "company": run.company_id.id, "contract": contract.id}
        self.env.cr.execute(
            SQL(billing_sql.INSERT_LINES, invoice_dates=[day for day, _key in line_keys],
                keys=[key for _day, key in line_keys], **ids),
            log_exceptions=False,  # two workers adding one line: the later starts again (expected)
        )
        line_ids = {(day, key): line_id for day, key, line_id in self.env.execute_query(
            SQL(billing_sql.LINE_IDS, run=run.id, contract=contract.id)
        )}
        rows = [
            (part["schedule_id"], line_ids[invoice_dates[part["schedule_id"]], key], part["kind"],
             part.get("valuation_id"), to_decimal(part["quantity"]), to_decimal(part["price_unit"]),
             to_decimal(part["amount"]))
            for part, key in zip(parts, keys, strict=True)
        ]
        billed = {part["schedule_id"] for part in parts}
        rows += [(sid, None, None, None, None, None, None) for sid in schedules.ids if sid not in billed]
        columns = [list(column) for column in zip(*rows, strict=True)]
        self.flush_model()
        self.env.cr.execute(SQL(
            billing_sql.INSERT_PARTS, schedule_ids=columns[0], line_ids=columns[1], kinds=columns[2],
            valuation_ids=columns[3], quantities=columns[4], prices=columns[5], amounts=columns[6], **ids,
        ))
        schedules._iot_set_state("billing")

    @api.model
    def _link_slice(self, run, contract, limit):
        """Step *link*: a slice of the contract's staged schedules becomes invoiced, their parts
        linked to their invoice lines (what the invoice's detail reads) and deleted.

        Returns the schedules linked: 0 once none is left, None if what is left is held by
        other transactions (other workers' slices)."""
        self.flush_model()
        Schedule = self.env["iot.invoicing.schedule"]
        Schedule.flush_model(["state"])
        candidates = [row[0] for row in self.env.execute_query(
            SQL(billing_sql.LINK_CANDIDATES, run=run.id, contract=contract.id, limit=4 * limit)
        )]
        if not candidates:
            return 0
        schedule_ids = claim_rows(
            self.env.cr, Schedule._table, candidates, limit, RowLock.UPDATE, where=SQL("state = 'billing'")
        )
        if not schedule_ids:
            return None
        by_move, by_line = {}, {}
        for schedule_id, kind, valuation_id, move_line_id, move_id in self.env.execute_query(
            SQL(billing_sql.SLICE_PARTS, run=run.id, contract=contract.id, schedule_ids=schedule_ids)
        ):
            by_move.setdefault(move_id, set()).add(schedule_id)
            if kind:
                part = {"schedule_id": schedule_id, "kind": kind, "valuation_id": valuation_id}
                by_line.setdefault(move_line_id, []).append(part)
        for move_id, ids in by_move.items():
            Schedule.browse(sorted(ids)).write({"state": "invoiced", "invoice_id": move_id})
        Schedule.browse(schedule_ids)._iot_link_invoice_lines(list(by_line.items()))
        self.flush_model()
        self.env.cr.execute(
            SQL(billing_sql.DELETE_SLICE_PARTS, run=run.id, contract=contract.id, schedule_ids=schedule_ids)
        )
        return len(schedule_ids)

    @api.model
    def _unstage(self, run, contract):
        """A contract that failed before its invoice: its staged schedules are due again."""
        self.flush_model()
        staged = [row[0] for row in self.env.execute_query(
            SQL(billing_sql.STAGED_SCHEDULES, run=run.id, contract=contract.id)
        )]
        self.env["iot.invoicing.schedule"].browse(staged)._iot_set_state("planned")
        self._delete_staged(run, contract)

    @api.model
    def _delete_staged(self, run, contract):
        """The contract's staged rows go: its invoice is complete, or it failed."""
        Line = self.env["iot.billing.run.line"]
        Line.flush_model()
        self.flush_model()
        for table in (self._table, Line._table):
            self.env.cr.execute(
                SQL(billing_sql.DELETE_CONTRACT_ROWS, table=SQL.identifier(table), run=run.id, contract=contract.id),
                # A worker whose snapshot predates another's posting meets a serialization
                # failure here and starts again (expected, not logged).
                log_exceptions=False,
            )
        Line.invalidate_model()
        self.invalidate_model()

    @api.model
    def _contracts_in_steps(self, run):
        """Ids of the contracts the run is billing in steps (staged parts or lines left)."""
        self.flush_model()
        self.env["iot.billing.run.line"].flush_model()
        return [row[0] for row in self.env.execute_query(SQL(billing_sql.CONTRACTS_IN_STEPS, run=run.id))]
