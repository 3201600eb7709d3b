from decimal import Decimal

from odoo import fields, models
from odoo.tools import SQL

from ..tools import billing_sql


class IotBillingRunLine(models.Model):
    """An invoice line of a contract billed in steps, while its run builds it.

    A contract with more due schedules than a chunk takes (``iot.billing.engine``,
    *contracts billed in steps*) is valued a slice at a time; each slice adds its parts
    (``iot.billing.run.part``) to the line their grouping key names. Once every slice is in,
    the *invoice* step creates the invoices from these lines' sums; the parts are linked to
    them slice by slice, then the *post* step posts them and these rows are deleted.
    """

    _name = "iot.billing.run.line"
    _description = "IoT Billing Run Line Being Built"
    _order = "run_id, contract_id, invoice_date, id"
    _log_access = False

    run_id = fields.Many2one("iot.billing.run", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="run_id.company_id", store=True, index=True)
    contract_id = fields.Many2one("iot.contract", required=True, ondelete="cascade", index=True)
    invoice_date = fields.Date(required=True)
    key = fields.Char(required=True, help="The grouping key of the line (its representation).")
    move_id = fields.Many2one("account.move", string="Invoice", ondelete="restrict", index="btree_not_null")
    move_line_id = fields.Many2one("account.move.line", string="Invoice Line", ondelete="set null")

    _sql_constraints = [
        ("key_uniq", "UNIQUE(run_id, contract_id, invoice_date, key)", "One line per grouping key."),
    ]

    def _invoice(self, run, contract):
        """Step *invoice*: the contract's invoices (draft), one per invoice date, from the sums
        of these lines' parts; each line then knows its invoice line. Returns the invoices."""
        cr = self.env.cr
        # The stages have just changed the state of up to millions of rows: fresh statistics
        # keep the planner on the indexes for the links that follow.
        cr.execute("ANALYZE iot_invoicing_schedule, iot_billing_run_part")
        ids = {"run": run.id, "contract": contract.id}
        sums = {row[0]: row[1:] for row in self.env.execute_query(SQL(billing_sql.LINE_SUMS, **ids))}
        first_rows = {row[0]: row[1:] for row in self.env.execute_query(SQL(billing_sql.LINE_FIRST_MEMBERS, **ids))}
        first_schedules = self.env["iot.invoicing.schedule"].browse({row[0] for row in first_rows.values()})
        # The first member's part, with its label, as the schedule's parts give it, in their order.
        parts = {}
        for part in first_schedules._iot_invoice_line_parts():
            parts.setdefault(part["schedule_id"], []).append(part)
        info = contract._iot_schedule_group_info(first_schedules)
        by_date = {}
        for line in self.filtered(lambda line: line.id in sums):
            count, amount, quantity, price_min, price_max, date_from, date_to, periods, devices, first_schedule = (
                sums[line.id]
            )
            schedule_id, kind, valuation_id, first_part, position = first_rows[line.id]
            first = parts[schedule_id][position]
            if (first["kind"], first.get("valuation_id")) != (kind, valuation_id):
                raise ValueError(
                    "schedule %s: its parts changed between staging and invoicing" % schedule_id
                )
            summary = {
                "first": first,
                "info": info[schedule_id],
                "count": count,
                "amount": Decimal(amount),
                "quantity": Decimal(quantity),
                "prices": {Decimal(price_min), Decimal(price_max)},
                "date_from": date_from,
                "date_to": date_to,
                "period": (date_from, date_to) if periods == 1 else None,
                "devices": devices,
            }
            # The order of a contract billed at once: fees first, then usage, by first member.
            order = (kind != "fixed", first_schedule, first_part)
            by_date.setdefault(line.invoice_date, []).append((order, line, summary))
        plans = []
        for invoice_date, entries in sorted(by_date.items()):
            entries.sort(key=lambda entry: entry[0])
            lines = [(contract._iot_summary_line_vals(summary), line) for _order, line, summary in entries]
            plans.append((contract, invoice_date, lines))
        invoices = self.env["account.move"]
        for invoice, paired in self.env["iot.billing.engine"]._create_invoices(run, plans):
            for move_line, staged in paired:
                staged.write({"move_id": invoice.id, "move_line_id": move_line.id})
            invoices |= invoice
        return invoices

    def _post(self, run, contract):
        """Step *post*: the contract's complete invoices are posted, as the contract says;
        its staged rows go."""
        invoices = self.move_id
        self.env["iot.billing.run.part"]._delete_staged(run, contract)
        if contract.auto_post:
            invoices.action_post()
