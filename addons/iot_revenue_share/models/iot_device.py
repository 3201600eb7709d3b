from odoo import fields, models


class IotDevice(models.Model):
    _inherit = "iot_billing.device"

    iot_owner_partner_id = fields.Many2one(
        "res.partner",
        string="Owner",
        check_company=True,
        help="Who owns the asset (e.g. the vendor who leases it); receives the shares of rules "
        "whose beneficiary is the device's owner.",
    )
    iot_revenue_share_rule_ids = fields.One2many("iot.revenue.share.rule", "device_id", string="Revenue Share")
