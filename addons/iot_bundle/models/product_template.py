from odoo import api, fields, models
from odoo.exceptions import ValidationError

BUNDLE_LINES = [("options", "One Line per Option"), ("bundle", "One Bundle Line")]


class ProductTemplate(models.Model):
    _inherit = "product.template"

    iot_is_service_option = fields.Boolean(
        string="IoT Service Option",
        help="A service a bundle plan offers: its sales price is added to the fee of the items that choose "
        "it, its settings to their preset.",
    )
    iot_is_bundle = fields.Boolean(
        string="Bundle of Service Options",
        help="The plan is made of service options chosen per contract item: the item's fee is the plan's "
        "own price (its base, 0 for a pure bundle) plus the prices of its options.",
    )
    iot_bundle_option_ids = fields.Many2many(
        "product.product", "iot_bundle_plan_option_rel", "plan_tmpl_id", "option_id",
        string="Service Options", domain="[('iot_is_service_option', '=', True)]",
    )
    iot_bundle_default_option_ids = fields.Many2many(
        "product.product", "iot_bundle_plan_default_option_rel", "plan_tmpl_id", "option_id",
        string="Default Options", domain="[('id', 'in', iot_bundle_option_ids)]",
        help="The options a new contract item of this plan takes when none are given.",
    )
    iot_bundle_lines = fields.Selection(
        BUNDLE_LINES, string="Bundle Invoice Lines", default="options", required=True,
        help="One line per option (each with its product, grouped by the contract's policy), or one line "
        "of the plan listing the options.",
    )
    iot_setting_value_ids = fields.One2many(
        "iot.bundle.setting.value", "product_tmpl_id", string="Device Settings",
        domain=[("role", "=", "default")], context={"default_role": "default"},
        help="A plan's default settings, or the settings a service option implies.",
    )
    iot_suspended_setting_value_ids = fields.One2many(
        "iot.bundle.setting.value", "product_tmpl_id", string="Settings While Suspended",
        domain=[("role", "=", "suspended")], context={"default_role": "suspended"},
        help="Applied on top of the item's settings while it is suspended (a new preset on suspension "
        "and on resumption). Empty: suspension sends no preset.",
    )

    @api.constrains("iot_bundle_option_ids", "iot_bundle_default_option_ids")
    def _check_bundle_options(self):
        for plan in self.filtered("iot_is_bundle"):
            if plan.iot_bundle_default_option_ids - plan.iot_bundle_option_ids:
                raise ValidationError(
                    self.env._("%(plan)s: default options must be among its service options.", plan=plan.name)
                )
            not_options = plan.iot_bundle_option_ids.filtered(lambda option: not option.iot_is_service_option)
            if not_options:
                raise ValidationError(
                    self.env._("%(product)s is not a service option.", product=not_options[0].display_name)
                )
