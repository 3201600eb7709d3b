from odoo import fields, models


class IotBillingRunLine(models.Model):
    """An invoice line of a contract billed in steps, while its run builds it.

    A contract with more due schedules than a chunk takes (see ``iot.billing.run``,
    *Contracts billed in steps*) is valued a slice at a time; each slice adds its
    parts (``iot.billing.run.part``) to the line their grouping key names. Once every
    slice is in, the invoice is created from these lines' sums, the parts are linked
    to it slice by slice, then it is posted and these rows are deleted.
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
