from odoo import api, models
from odoo.exceptions import UserError


class ProductProduct(models.Model):
    _inherit = "product.product"

    @api.model
    def _iot_prepaid_credit_product(self, company):
        """The product top-ups sell and period invoices deduct: the company's, else a shared one."""
        product = self.sudo().search(
            [("iot_prepaid_credit", "=", True), ("company_id", "in", [company.id, False])],
            order="company_id, id", limit=1,
        )
        if not product:
            raise UserError(self.env._(
                "No Prepaid Credit product: mark a service product as Prepaid Credit Product (IoT tab)."))
        return product.sudo(False)
