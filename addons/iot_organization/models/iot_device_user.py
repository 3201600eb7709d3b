from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL, format_date


class IotDeviceUser(models.Model):
    _name = "iot_billing.device.user"
    _description = "IoT Device User"
    _order = "device_id, date_from desc, id desc"
    _check_company_auto = True

    device_id = fields.Many2one("iot_billing.device", required=True, ondelete="cascade", index=True, check_company=True)
    company_id = fields.Many2one(related="device_id.company_id", store=True, index=True, precompute=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="User",
        required=True,
        index=True,
        check_company=True,
        help="Who uses the device (an employee of the customer, a person): not who pays for it.",
    )
    customer_id = fields.Many2one(related="device_id.partner_id", string="Customer")
    date_from = fields.Date(string="From", required=True, default=fields.Date.context_today)
    date_to = fields.Date(string="To", help="Last day of use; empty while the user still has the device.")
    note = fields.Char()

    _sql_constraints = [
        ("dates_ordered", "CHECK (date_to IS NULL OR date_to >= date_from)", "A device user's end precedes its start."),
    ]

    @api.depends("partner_id", "device_id")
    def _compute_display_name(self):
        for usage in self:
            usage.display_name = "%s — %s" % (usage.device_id.display_name, usage.partner_id.display_name)

    @api.constrains("device_id", "date_from", "date_to")
    def _check_no_overlap(self):
        """One user at a time per device: no two periods of a device share a day."""
        self.flush_model(["device_id", "date_from", "date_to"])
        self.env.cr.execute(SQL(
            """SELECT usage.id, other.id
                 FROM iot_billing_device_user usage
                 JOIN iot_billing_device_user other
                   ON other.device_id = usage.device_id AND other.id != usage.id
                  AND daterange(usage.date_from, usage.date_to, '[]') && daterange(other.date_from, other.date_to, '[]')
                WHERE usage.id = ANY(%s)
                LIMIT 1""",
            self.ids,
        ))
        overlap = self.env.cr.fetchone()
        if overlap:
            usage, other = self.browse(overlap)
            raise ValidationError(self.env._(
                "%(device)s already has a user from %(start)s to %(end)s (%(user)s): the periods of a "
                "device's users cannot overlap.",
                device=usage.device_id.display_name, start=format_date(self.env, other.date_from),
                end=format_date(self.env, other.date_to) if other.date_to else self.env._("now"),
                user=other.partner_id.name,
            ))

    @api.model
    def _iot_users_on(self, device_ids, days):
        """{(device id, day): user partner} for each device and day given (an empty partner
        when nobody used the device that day), read in one query."""
        pairs = list(zip(device_ids, days, strict=True))
        found = {}
        if pairs:
            self.flush_model()
            self.env.cr.execute(SQL(
                """SELECT wanted.device_id, wanted.day, usage.partner_id
                     FROM unnest(%s::int[], %s::date[]) AS wanted(device_id, day)
                     JOIN iot_billing_device_user usage
                       ON usage.device_id = wanted.device_id AND usage.date_from <= wanted.day
                      AND (usage.date_to IS NULL OR usage.date_to >= wanted.day)""",
                [device_id for device_id, _day in pairs], [day for _device_id, day in pairs],
            ))
            found = {(device_id, day): partner_id for device_id, day, partner_id in self.env.cr.fetchall()}
        Partner = self.env["res.partner"]
        return {pair: Partner.browse(found.get(pair)) for pair in pairs}
