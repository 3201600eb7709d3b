from odoo import models


class AccountChartTemplate(models.AbstractModel):
    _inherit = "account.chart.template"

    def _post_load_data(self, template_code, company, template_data):
        result = super()._post_load_data(template_code, company, template_data)
        # A company whose chart is installed after this module (a new company) books the credit
        # it sells as a customer advance too; the post-init hook covered the companies of then.
        self.env["product.product"]._iot_prepaid_set_advance_accounts(company or self.env.company)
        return result
