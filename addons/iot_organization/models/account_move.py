from odoo import models
from odoo.tools import SQL


class AccountMove(models.Model):
    _inherit = "account.move"

    def _iot_detail_device_user_sql(self):
        # Every user of the device over the row's period, in the order they had it.
        self.env["iot_billing.device.user"].flush_model()
        return SQL("""(SELECT string_agg(device_user_partner.name, ', ' ORDER BY device_user.date_from)
                         FROM iot_billing_device_user device_user
                         JOIN res_partner device_user_partner ON device_user_partner.id = device_user.partner_id
                        WHERE device_user.device_id = device.id
                          AND device_user.date_from <= schedule.date_to
                          AND (device_user.date_to IS NULL OR device_user.date_to >= schedule.date_from))""")
