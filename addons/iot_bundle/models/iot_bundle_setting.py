from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import SETTING_TYPES


class IotBundleSetting(models.Model):
    """A device setting a plan or a service option can set: its key in the preset, its type."""

    _name = "iot.bundle.setting"
    _description = "IoT Device Setting"
    _order = "code, id"

    name = fields.Char(required=True, translate=True)
    code = fields.Char(required=True, help="The key of the setting in the preset the device receives.")
    value_type = fields.Selection(SETTING_TYPES, string="Type", required=True, default="number")
    choices = fields.Char(help="Choice: the allowed values, separated by commas (e.g. 'low,medium,high').")
    company_id = fields.Many2one("res.company", help="Empty: shared by every company.")
    active = fields.Boolean(default=True)

    _sql_constraints = [
        ("code_company_unique", "UNIQUE(code, company_id)", "A setting code is used once per company."),
    ]

    @api.constrains("value_type", "choices")
    def _check_choices(self):
        for setting in self:
            if setting.value_type == "choice" and not setting._allowed_choices():
                raise ValidationError(
                    self.env._("Setting %(setting)s is a choice: list its allowed values.", setting=setting.name)
                )

    def _allowed_choices(self):
        self.ensure_one()
        return tuple(choice.strip() for choice in (self.choices or "").split(",") if choice.strip())
