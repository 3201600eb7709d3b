from odoo import api, models


class IotWebhookMixin(models.AbstractModel):
    """What a model told to platforms by webhooks has: the fields whose change is told, the
    topic, and the payload of a record (plain JSON values, no display names of other models).

    Changes are gathered for the whole transaction and turned into deliveries just before it
    commits (``cr.precommit``): an activation that writes a device three times, or a bulk
    registration of thousands, is told once per record with its values as committed.
    """

    _name = "iot.webhook.mixin"
    _description = "IoT Platform Webhook Source"

    _iot_webhook_topic = None
    _iot_webhook_event = None  # the event type prefix, e.g. "device"
    _iot_webhook_fields = ()

    def _iot_webhook_payload(self):
        """``[{...}]``: one JSON-ready dict per record."""
        raise NotImplementedError

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        records._iot_webhook_gather("created")
        return records

    def write(self, vals):
        changed = set(vals) & set(self._iot_webhook_fields)
        result = super().write(vals)
        if changed:
            self._iot_webhook_gather("changed", changed)
        return result

    def _iot_webhook_gather(self, action, changed=()):
        if not self or not self.env["iot.webhook"]._for_topic(self._iot_webhook_topic, self.company_id.ids):
            return
        data = self.env.cr.precommit.data
        pending = data.setdefault("iot_webhook.%s" % self._name, {})
        if not pending:
            self.env.cr.precommit.add(self._iot_webhook_flush)
        for record_id in self.ids:
            entry = pending.setdefault(record_id, {"created": False, "changed": set()})
            entry["created"] = entry["created"] or action == "created"
            entry["changed"].update(changed)

    def _iot_webhook_flush(self):
        pending = self.env.cr.precommit.data.pop("iot_webhook.%s" % self._name, {})
        records = self.browse(list(pending)).sudo().exists()  # the platform is told, whoever made the change
        webhooks = self.env["iot.webhook"]._for_topic(self._iot_webhook_topic, records.company_id.ids)
        for company, in_company in records.grouped("company_id").items():
            targets = webhooks.filtered(lambda webhook, company=company: webhook.company_id == company)
            created = in_company.filtered(lambda record: pending[record.id]["created"])
            changes = (in_company - created)._iot_webhook_payload()
            for change in changes:
                change["changed"] = sorted(pending[change["id"]]["changed"])
            Delivery = self.env["iot.webhook.delivery"]
            Delivery._enqueue(targets, "%s.created" % self._iot_webhook_event, created._iot_webhook_payload())
            Delivery._enqueue(targets, "%s.changed" % self._iot_webhook_event, changes)
        self.env.flush_all()  # the commit that follows flushes nothing after its precommit hooks
