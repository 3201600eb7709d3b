from odoo import api, fields, models


class IotContractItemSuspension(models.Model):
    _name = "iot.contract.item.suspension"
    _description = "IoT Contract Item Suspension"
    _order = "item_id, date_from, id"
    _check_company_auto = True

    item_id = fields.Many2one(
        "iot.contract.item", string="Contract Item", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="item_id.company_id", store=True, index=True, precompute=True)
    date_from = fields.Date(string="Suspended From", required=True, help="First day suspended.")
    date_to = fields.Date(
        string="Suspended To", help="Last day suspended (the day before the resumption); empty while suspended."
    )

    _sql_constraints = [
        (
            "dates_ordered",
            "CHECK(date_to IS NULL OR date_from <= date_to)",
            "A suspension ends after it starts.",
        ),
    ]

    @api.depends("item_id", "date_from", "date_to")
    def _compute_display_name(self):
        for suspension in self:
            suspension.display_name = "%s: %s - %s" % (
                suspension.item_id.display_name,
                suspension.date_from or "",
                suspension.date_to or "",
            )
