from odoo import api, fields, models
from odoo.exceptions import ValidationError

# Writing one of these changes the item's fee or preset.
FEE_FIELDS = {"product_id", "price_unit", "sequence", "item_id"}


class IotContractItemOption(models.Model):
    """A service option a contract item has chosen: its price is part of the item's fee, its
    settings part of the item's preset. Adding, removing or re-pricing one re-plans the item's
    periods not invoiced yet (as a change of the item's price does) and pushes a new preset."""

    _name = "iot.contract.item.option"
    _description = "IoT Contract Item Service Option"
    _order = "item_id, sequence, id"
    _check_company_auto = True

    item_id = fields.Many2one("iot.contract.item", required=True, ondelete="cascade", index=True, check_company=True)
    company_id = fields.Many2one(related="item_id.company_id", store=True, index=True, precompute=True)
    currency_id = fields.Many2one(related="item_id.currency_id")
    product_id = fields.Many2one(
        "product.product", string="Option", required=True, ondelete="restrict", check_company=True,
        domain="[('iot_is_service_option', '=', True)]",
    )
    sequence = fields.Integer(default=10, help="Order of the options: a later option's settings win.")
    price_unit = fields.Monetary(
        string="Price", compute="_compute_price_unit", store=True, readonly=False, precompute=True,
        help="The option's fee for one full billing period; its sales price, as the plan's is.",
    )

    _sql_constraints = [
        ("item_option_unique", "UNIQUE(item_id, product_id)", "An item chooses an option once."),
    ]

    @api.depends("product_id", "item_id.contract_id.currency_id", "item_id.contract_id.fiscal_position_id")
    def _compute_price_unit(self):
        """As the plan's price (iot_contract, rule 1): adapted to the fiscal position, converted
        into the contract's currency at the item's start, rounded there."""
        for option in self:
            item = option.item_id
            contract = item.contract_id
            if not option.product_id or not contract:
                option.price_unit = 0.0
                continue
            company = contract.company_id or self.env.company
            currency = contract.currency_id or option.product_id.currency_id
            price = option.product_id.with_company(company)._get_tax_included_unit_price(
                company, currency, item.date_start or fields.Date.context_today(self), "sale",
                fiscal_position=contract.fiscal_position_id,
            )
            option.price_unit = currency.round(price)

    @api.constrains("product_id", "item_id")
    def _check_offered(self):
        for option in self:
            plan = option.item_id.product_id.product_tmpl_id
            if option.product_id not in plan.iot_bundle_option_ids:
                raise ValidationError(
                    self.env._(
                        "Plan %(plan)s does not offer option %(option)s.",
                        plan=plan.display_name, option=option.product_id.display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        options = super().create(vals_list)
        options.item_id._iot_options_changed()
        return options

    def write(self, vals):
        items = self.item_id
        result = super().write(vals)
        if FEE_FIELDS & vals.keys():
            (items | self.item_id)._iot_options_changed()
        return result

    def unlink(self):
        items = self.item_id
        result = super().unlink()
        items.exists()._iot_options_changed()
        return result
