import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError

# An MQTT topic level: no wildcard, no separator, no NUL (MQTT 3.1.1 §4.7).
TOPIC_PREFIX = re.compile(r"^[^/#+\x00]+(/[^/#+\x00]+)*$")


class ResCompany(models.Model):
    _inherit = "res.company"

    iot_brand_name = fields.Char(
        string="IoT Brand",
        help="The name customers know the service by: heads the device detail files. Empty: the company's name.",
    )
    iot_mqtt_topic_prefix = fields.Char(
        string="Downlink Topic Prefix",
        help="Commands to this company's devices go to <prefix>/iot/<identifier>/commands. Empty: the "
        "system parameter iot_device.mqtt_topic_prefix (none by default). Run the company's bridge with the "
        "same IOT_TOPIC_PREFIX for its uplink.",
    )
    iot_invoice_mail_template_id = fields.Many2one(
        "mail.template",
        string="IoT Invoice E-mail",
        domain=[("model", "=", "account.move")],
        help="Sends this company's IoT invoices (its sender and text); empty: Odoo's invoice e-mail.",
    )
    iot_refund_mail_template_id = fields.Many2one(
        "mail.template",
        string="IoT Credit Note E-mail",
        domain=[("model", "=", "account.move")],
        help="Sends this company's IoT credit notes; empty: Odoo's credit note e-mail.",
    )

    @api.constrains("iot_mqtt_topic_prefix")
    def _check_iot_mqtt_topic_prefix(self):
        for company in self:
            prefix = (company.iot_mqtt_topic_prefix or "").strip("/")
            if prefix and not TOPIC_PREFIX.match(prefix):
                raise ValidationError(self.env._(
                    "The downlink topic prefix %(prefix)r may not contain '+', '#' or empty levels.", prefix=prefix))

    def _iot_brand(self):
        self.ensure_one()
        return self.iot_brand_name or self.name
