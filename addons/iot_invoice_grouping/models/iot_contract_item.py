from odoo import models


class IotContractItem(models.Model):
    """Items carry an analytic distribution (a site, a project) for the 'analytic' grouping."""

    _name = "iot.contract.item"
    _inherit = ["iot.contract.item", "analytic.mixin"]
