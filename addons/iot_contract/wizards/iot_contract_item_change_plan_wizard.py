from odoo import api, fields, models
from odoo.exceptions import UserError


class IotContractItemChangePlanWizard(models.TransientModel):
    _name = "iot.contract.item.change.plan.wizard"
    _description = "Change the Plan of IoT Contract Items"

    item_ids = fields.Many2many("iot.contract.item", string="Contract Items", required=True)
    product_id = fields.Many2one(
        "product.product",
        string="New Plan",
        required=True,
        domain="[('iot_is_plan', '=', True)]",
    )
    date = fields.Date(
        string="Effective Date",
        required=True,
        default=fields.Date.context_today,
        help="First day on the new plan; the old plan bills the days before it.",
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        ids = context.get("active_ids") or []
        if context.get("active_model") == "iot.contract.item":
            items = self.env["iot.contract.item"].browse(ids)
        elif context.get("active_model") == "iot_billing.device":
            items = self.env["iot_billing.device"].browse(ids).current_item_id
        else:
            items = self.env["iot.contract.item"]
        values["item_ids"] = [(6, 0, items.ids)]
        return values

    def action_change_plan(self):
        self.ensure_one()
        for item in self.item_ids:
            error = item._iot_plan_change_error(self.product_id, self.date)
            if error:
                raise UserError(error)
        new_items = self.item_ids._iot_change_plan(self.product_id, self.date)
        action = self.env["ir.actions.act_window"]._for_xml_id("iot_contract.iot_contract_item_action")
        action["domain"] = [("id", "in", new_items.ids)]
        return action
