from odoo import fields, models

from .iot_revenue_share_rule import KINDS


class IotRevenueShareLine(models.Model):
    """One device-period's share of one customer invoice (or credit note) under one rule.

    Recorded once per (invoice, schedule, rule, kind): a settlement run never counts
    the same billed amount twice. Lines of a credit note are negative.
    """

    _name = "iot.revenue.share.line"
    _description = "IoT Revenue Share Line"
    _order = "settlement_id, rule_id, kind, id"
    # Inserted by the settlement run in one statement, up to hundreds of thousands a
    # month, never edited: no create/write user and date (as on iot.usage.valuation).
    _log_access = False

    settlement_id = fields.Many2one("iot.revenue.share.settlement", required=True, ondelete="cascade", index=True)
    # A settlement inserts its lines by the hundred thousand: each stored many2one is a foreign
    # key checked per row and each index is maintained per row, so what the settlement or the
    # schedule already holds is read through them, and lines are indexed for what reads them
    # (by settlement; the unique index leads with the invoice; schedules need theirs for deletes).
    company_id = fields.Many2one(related="settlement_id.company_id")
    currency_id = fields.Many2one(related="settlement_id.currency_id")
    partner_id = fields.Many2one(related="settlement_id.partner_id", string="Beneficiary")
    rule_id = fields.Many2one("iot.revenue.share.rule", required=True, ondelete="restrict")
    kind = fields.Selection(KINDS, required=True)
    invoice_id = fields.Many2one("account.move", string="Customer Document", required=True, ondelete="restrict")
    schedule_id = fields.Many2one("iot.invoicing.schedule", required=True, ondelete="restrict", index=True)
    device_id = fields.Many2one(related="schedule_id.device_id")
    base_amount = fields.Monetary(help="Billed untaxed amount shared, in the company currency.")
    percent = fields.Float(digits=(16, 4), help="Percent applied; empty for fixed amounts per device.")
    share_amount = fields.Monetary(string="Share")

    _sql_constraints = [
        (
            "invoice_schedule_rule_kind_unique",
            "unique(invoice_id, schedule_id, rule_id, kind)",
            "This billed amount was already shared under this rule.",
        ),
    ]
