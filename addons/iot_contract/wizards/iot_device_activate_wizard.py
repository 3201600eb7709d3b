from odoo import api, fields, models
from odoo.exceptions import UserError


class IotDeviceActivateWizard(models.TransientModel):
    _name = "iot_billing.device.activate.wizard"
    _description = "Activate IoT Devices on a Contract"

    device_ids = fields.Many2many("iot_billing.device", string="Devices", required=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Customer",
        compute="_compute_partner_id",
        help="The devices' customer, when they share one: contracts are filtered by it.",
    )
    contract_id = fields.Many2one(
        "iot.contract",
        required=True,
        domain="[('partner_id', '=?', partner_id), ('state', '!=', 'closed')]",
    )
    product_id = fields.Many2one(
        "product.product",
        string="Plan",
        required=True,
        domain="[('iot_is_plan', '=', True)]",
    )
    date_start = fields.Date(required=True, default=fields.Date.context_today)
    duration_months = fields.Integer(
        string="Duration (months)",
        compute="_compute_duration_months",
        store=True,
        readonly=False,
        required=True,
        precompute=True,
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        if context.get("active_model") == "iot_billing.device" and context.get("active_ids"):
            devices = self.env["iot_billing.device"].browse(context["active_ids"])
            values["device_ids"] = [(6, 0, devices.ids)]
            # Pre-fill what the devices already know, when they agree.
            if len(devices.contract_id) == 1 and "contract_id" in fields_list:
                values.setdefault("contract_id", devices.contract_id.id)
            if len(devices.plan_id) == 1 and "product_id" in fields_list:
                values.setdefault("product_id", devices.plan_id.id)
        return values

    @api.depends("device_ids")
    def _compute_partner_id(self):
        for wizard in self:
            partners = wizard.device_ids.partner_id.commercial_partner_id
            wizard.partner_id = partners if len(partners) == 1 else False

    @api.depends("product_id")
    def _compute_duration_months(self):
        for wizard in self:
            wizard.duration_months = wizard.product_id.iot_duration_months or 12

    def action_activate(self):
        self.ensure_one()
        if self.duration_months <= 0:
            raise UserError(self.env._("The duration must be at least one month."))
        errors = []
        for device in self.device_ids:
            error = device._iot_activation_error(self.contract_id, self.product_id)
            if error:
                errors.append("%s: %s" % (device.display_name, error))
        if errors:
            raise UserError("\n".join(errors))
        items = self.env["iot_billing.device"]._iot_activate(
            [
                {
                    "device": device,
                    "contract": self.contract_id,
                    "plan": self.product_id,
                    "date_start": self.date_start,
                    "duration_months": self.duration_months,
                }
                for device in self.device_ids
            ]
        )
        if len(self.device_ids) == 1:
            return {"type": "ir.actions.act_window_close"}
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_contract_item_action")
        action["domain"] = [("id", "in", items.ids)]
        return action
