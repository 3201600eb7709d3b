from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..tools import parse_setting_value, to_json_value

ROLES = [
    ("default", "Default"),  # a plan's default, or what a service option implies
    ("suspended", "While Suspended"),  # a plan's setting while the item is suspended
    ("override", "Item Override"),  # a contract item's own value
]


class IotBundleSettingValue(models.Model):
    """One setting's value, on a plan, a service option or a contract item (an override).

    The value is checked against the setting's type and stored normalized (``tools/settings.py``).
    """

    _name = "iot.bundle.setting.value"
    _description = "IoT Device Setting Value"
    _order = "setting_id, id"

    setting_id = fields.Many2one("iot.bundle.setting", required=True, ondelete="restrict", index=True)
    code = fields.Char(related="setting_id.code")
    value_type = fields.Selection(related="setting_id.value_type")
    value = fields.Char(required=True, help="Number: 7 or 0.5; boolean: true or false; choice: one of its values.")
    role = fields.Selection(ROLES, required=True, default="default")
    product_tmpl_id = fields.Many2one("product.template", string="Plan or Option", ondelete="cascade", index=True)
    item_id = fields.Many2one("iot.contract.item", string="Contract Item", ondelete="cascade", index=True)
    company_id = fields.Many2one(
        "res.company", compute="_compute_company_id", store=True, index=True,
        help="The item's company, else the plan's or option's (empty: shared).",
    )

    @api.depends("item_id.company_id", "product_tmpl_id.company_id")
    def _compute_company_id(self):
        for value in self:
            value.company_id = value.item_id.company_id or value.product_tmpl_id.company_id

    @api.constrains("setting_id", "value", "role", "product_tmpl_id", "item_id")
    def _check_value(self):
        for record in self:
            if bool(record.item_id) == bool(record.product_tmpl_id):
                raise ValidationError(self.env._("A setting value belongs to one plan, option or contract item."))
            if bool(record.item_id) != (record.role == "override"):
                raise ValidationError(self.env._("Only a contract item's values are overrides."))
            setting = record.setting_id
            if record._normalized(setting, record.value) != record.value:
                # create and write store the normalized text: only a changed type gets here
                raise ValidationError(
                    self.env._("Setting %(setting)s: %(value)r is not written as its type says.",
                               setting=setting.name, value=record.value)
                )
            twins = self.search_count([
                ("id", "!=", record.id), ("setting_id", "=", setting.id), ("role", "=", record.role),
                ("item_id", "=", record.item_id.id), ("product_tmpl_id", "=", record.product_tmpl_id.id),
            ])
            if twins:
                raise ValidationError(
                    self.env._("Setting %(setting)s is set twice in the same place.", setting=setting.name)
                )

    def _normalized(self, setting, text):
        """``text`` as stored for ``setting``, or a ValidationError saying why it is refused."""
        try:
            return parse_setting_value(setting.value_type, text, setting._allowed_choices())
        except ValueError as error:
            raise ValidationError(
                self.env._("Setting %(setting)s: %(error)s", setting=setting.name, error=error)
            ) from None

    def _as_pairs(self):
        """(code, JSON value) of these values, in order: one layer of a merge."""
        return [(value.setting_id.code, to_json_value(value.setting_id.value_type, value.value)) for value in self]

    @api.model_create_multi
    def create(self, vals_list):
        Setting = self.env["iot.bundle.setting"]
        for vals in vals_list:
            if "value" in vals and vals.get("setting_id"):
                vals["value"] = self._normalized(Setting.browse(vals["setting_id"]), vals["value"])
        values = super().create(vals_list)
        values.item_id._iot_push_presets("override")
        return values

    def write(self, vals):
        items = self.item_id
        if "value" in vals or "setting_id" in vals:
            for record in self:
                setting = self.env["iot.bundle.setting"].browse(vals.get("setting_id", record.setting_id.id))
                super(IotBundleSettingValue, record).write(
                    dict(vals, value=self._normalized(setting, vals.get("value", record.value)))
                )
            (items | self.item_id)._iot_push_presets("override")
            return True
        result = super().write(vals)
        (items | self.item_id)._iot_push_presets("override")
        return result

    def unlink(self):
        items = self.item_id
        result = super().unlink()
        items.exists()._iot_push_presets("override")
        return result
