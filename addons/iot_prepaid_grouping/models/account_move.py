from odoo import api, models
from odoo.tools import SQL


class AccountMove(models.Model):
    _inherit = "account.move"

    @api.model
    def _iot_detail_fixed_parts(self):
        """Each prepaid period's credit applied is a detail row (kind 'credit', negative) on the line
        that deducted it: the rows of every line, and of the invoice, still add up to it. The amount
        is the one that line was built from (iot.invoicing.schedule._iot_credit_applied)."""
        return SQL(
            """%(base)s
               UNION ALL
               SELECT schedule.id, 0, line.id, 'credit', credit.amount
                 FROM line
                 JOIN iot_invoicing_schedule schedule ON schedule.iot_credit_line_id = line.id
                 JOIN LATERAL (
                       SELECT sum(entry.amount)::numeric AS amount FROM iot_wallet_entry entry
                        WHERE entry.schedule_id = schedule.id AND entry.kind = 'debit'
                          AND entry.grant_id IS NOT NULL
                 ) credit ON credit.amount < 0""",
            base=super()._iot_detail_fixed_parts(),
        )
