from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _get_mail_template(self):
        # The company's branded e-mail for its IoT invoices; others keep Odoo's.
        company = self.company_id
        if len(company) == 1 and all(move.iot_schedule_count for move in self):
            refunds = all(move.move_type == "out_refund" for move in self)
            template = company.iot_refund_mail_template_id if refunds else company.iot_invoice_mail_template_id
            if template:
                return template
        return super()._get_mail_template()

    def _iot_detail_title(self, basis):
        return "%s — %s" % (self.company_id._iot_brand(), super()._iot_detail_title(basis))
