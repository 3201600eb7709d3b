from odoo import fields, models
from odoo.tools import create_index


class IotBillingRunPart(models.Model):
    """One schedule part (a fee, a rule's usage) of a contract billed in steps, valued and
    waiting for its invoice line; deleted once linked to it. A schedule with nothing to
    bill has one row without line, so that it is closed with its period.

    Rows are written and read with SQL, tens of thousands per step.
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
