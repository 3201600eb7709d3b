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

    @api.model
    def _iot_prepaid_set_advance_accounts(self, companies):
        """Give the Prepaid Credit product a customer-advance income account in ``companies``:
        the chart's Deferred Revenue (a current liability) where it has one, else a new
        "Customer Advances (prepaid credit)" current liability. Credit sold is owed to the
        customer until usage consumes it; the period invoice's negative line moves it to income."""
        product = self.env.ref("iot_prepaid.product_prepaid_credit", raise_if_not_found=False)
        if not product:
            return
        for company in companies.filtered("chart_template"):
            Account = self.env["account.account"].with_company(company)
            account = self.env["account.chart.template"].with_company(company).ref(
                "deferred_revenue", raise_if_not_found=False)
            if not account:
                account = Account.search([("code", "=", "2125"), ("company_ids", "in", company.id)], limit=1)
            if not account:
                account = Account.create({
                    "name": self.env._("Customer Advances (prepaid credit)"), "code": "2125",
                    "account_type": "liability_current", "company_ids": [(6, 0, company.ids)],
                })
            product.with_company(company).property_account_income_id = account
