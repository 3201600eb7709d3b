import secrets

from odoo import api, fields, models
from odoo.exceptions import ValidationError

TOPICS = [
    ("device", "Devices"),
    ("contract_item", "Contract items"),
    ("organization", "Organizations"),
]


class IotWebhook(models.Model):
    """A platform endpoint told of changes in billing, signed with a secret both sides know."""

    _name = "iot.webhook"
    _description = "IoT Platform Webhook"
    _order = "company_id, name"

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    url = fields.Char(string="URL", required=True, help="Receives an HTTP POST of a JSON body per batch of changes.")
    secret = fields.Char(
        required=True,
        copy=False,
        default=lambda self: secrets.token_hex(32),
        groups="iot_device.group_iot_manager",
        help="Key of the HMAC-SHA256 signature in the X-IoT-Signature header; the receiver checks it.",
    )
    on_device = fields.Boolean(string="Devices", default=True, help="Devices created or changed (state, name, "
                               "identifier, customer, contract, type).")
    on_contract_item = fields.Boolean(string="Contract items", default=True,
                                      help="Contract items created or changed (plan, dates, state, device).")
    on_organization = fields.Boolean(string="Organizations", default=True,
                                     help="Customers with IoT contracts renamed or moved in the partner hierarchy.")
    max_attempts = fields.Integer(default=8, help="Deliveries still refused after this many attempts are Failed.")
    timeout = fields.Integer(string="Timeout (s)", default=10)
    delivery_ids = fields.One2many("iot.webhook.delivery", "webhook_id", string="Deliveries")
    pending_count = fields.Integer(compute="_compute_delivery_counts")
    failed_count = fields.Integer(compute="_compute_delivery_counts")

    _sql_constraints = [
        ("max_attempts_positive", "CHECK (max_attempts > 0)", "A webhook needs at least one attempt."),
        ("timeout_positive", "CHECK (timeout > 0)", "The timeout must be positive."),
    ]

    @api.constrains("url")
    def _check_url(self):
        for webhook in self:
            if not (webhook.url or "").startswith(("http://", "https://")):
                raise ValidationError(self.env._("The webhook URL must start with http:// or https://."))

    def _compute_delivery_counts(self):
        counts = {
            (webhook, state): count
            for webhook, state, count in self.env["iot.webhook.delivery"]._read_group(
                [("webhook_id", "in", self.ids), ("state", "in", ("pending", "failed"))],
                ["webhook_id", "state"], ["__count"],
            )
        }
        for webhook in self:
            webhook.pending_count = counts.get((webhook, "pending"), 0)
            webhook.failed_count = counts.get((webhook, "failed"), 0)

    def action_new_secret(self):
        for webhook in self:
            webhook.secret = secrets.token_hex(32)

    def action_view_deliveries(self):
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_platform_sync.iot_webhook_delivery_action")
        action["domain"] = [("webhook_id", "in", self.ids)]
        return action

    @api.model
    def _for_topic(self, topic, company_ids):
        """The active webhooks of ``topic`` (a TOPICS key) in the companies."""
        return self.sudo().search([("on_" + topic, "=", True), ("company_id", "in", list(company_ids))])
