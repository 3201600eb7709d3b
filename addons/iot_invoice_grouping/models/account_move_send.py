from odoo import api, models


class AccountMoveSend(models.AbstractModel):
    _inherit = "account.move.send"

    @api.model
    def _get_invoice_extra_attachments(self, move):
        # The device detail attached at posting goes out with the invoice's PDF.
        return super()._get_invoice_extra_attachments(move) | move.iot_detail_attachment_id
