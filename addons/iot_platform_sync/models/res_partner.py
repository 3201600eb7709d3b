from odoo import models

ORGANIZATION_FIELDS = ("name", "ref", "parent_id", "is_company", "active")


class ResPartner(models.Model):
    _inherit = "res.partner"

    def write(self, vals):
        changed = set(vals) & set(ORGANIZATION_FIELDS)
        result = super().write(vals)
        if changed and self.env["iot.webhook"].sudo().search_count([("on_organization", "=", True)], limit=1):
            pending = self.env.cr.precommit.data.setdefault("iot_webhook.organization", {})
            if not pending:
                self.env.cr.precommit.add(self._iot_organization_flush)
            for partner_id in self.ids:
                pending.setdefault(partner_id, set()).update(changed)
        return result

    def _iot_organization_flush(self):
        """Tell platforms of customers of IoT contracts renamed or moved in the hierarchy, once per
        transaction (as the webhook mixin does for devices)."""
        pending = self.env.cr.precommit.data.pop("iot_webhook.organization", {})
        customers_by_company = self.env["iot.contract"].sudo().with_context(active_test=False)._read_group(
            [("partner_id", "in", list(pending))], ["company_id"], ["partner_id:recordset"])
        for company, customers in customers_by_company:
            webhooks = self.env["iot.webhook"]._for_topic("organization", company.ids)
            changes = [{
                "id": partner.id,
                "name": partner.name,
                "ref": partner.ref or None,
                "is_company": partner.is_company,
                "parent_id": partner.parent_id.id or None,
                "commercial_partner_id": partner.commercial_partner_id.id,
                "active": partner.active,
                "changed": sorted(pending[partner.id]),
            } for partner in customers.sudo()]
            self.env["iot.webhook.delivery"]._enqueue(webhooks, "organization.changed", changes)
        self.env.flush_all()  # the commit that follows flushes nothing after its precommit hooks
