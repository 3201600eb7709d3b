from odoo import api, models
from odoo.exceptions import UserError


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _check_move_constrains(self, moves):
        # Checked when sending is opened and when it runs: an invoice whose detail the cron is
        # still writing would go out without it.
        super()._check_move_constrains(moves)
        for move in moves.filtered(lambda move: move.iot_detail_state == "pending"):
            raise UserError(
                self.env._(
                    "The device detail of %(invoice)s is being written (%(written)s rows of %(rows)s): "
                    "try again in a minute.",
                    invoice=move.display_name, written=move.iot_detail_rows_written, rows=move.iot_detail_row_count,
                )
            )

    @api.model
    def _get_invoice_extra_attachments(self, move):
        # The device detail attached at posting goes out with the invoice's PDF.
        return super()._get_invoice_extra_attachments(move) | move.iot_detail_attachment_id
