from odoo import api, fields, models
from odoo.tools import SQL


class IotContractPayer(models.Model):
    """Who a contract's invoices went to from a day on: a period is billed to the payer of its
    invoice date, whenever the run bills it (a run dated back, a usage grace period)."""

    _name = "iot.contract.payer"
    _description = "IoT Contract Payer"
    _order = "contract_id, date_from desc, id desc"

    contract_id = fields.Many2one("iot.contract", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="contract_id.company_id", store=True, index=True, precompute=True)
    date_from = fields.Date(string="From", help="First day billed to this payer; empty: from the beginning.")
    payer_id = fields.Many2one("res.partner", string="Payer", required=True, ondelete="restrict")
    billed_to_parent = fields.Boolean(string="Billed to Parent")

    @api.model
    def _iot_record_changes(self, contracts, before):
        """Record the contracts whose payer changed since ``before`` ({contract id: (payer id,
        billed to parent)}, None for a new contract), from today on. A contract's first record
        (its creation, or its first change after this module was installed) holds from the beginning."""
        today = fields.Date.context_today(self)
        with_history = {contract for (contract,) in self.sudo()._read_group(
            [("contract_id", "in", contracts.ids)], ["contract_id"])}
        vals_list = []
        for contract in contracts:
            now = (contract.iot_payer_id.id, contract.iot_billed_to_parent)
            was = before.get(contract.id)
            if not now[0] or was == now:
                continue
            if was and was[0] and contract not in with_history:
                vals_list.append({"contract_id": contract.id, "date_from": False, "payer_id": was[0],
                                  "billed_to_parent": was[1]})
            vals_list.append({"contract_id": contract.id, "date_from": today if was else False,
                              "payer_id": now[0], "billed_to_parent": now[1]})
        if vals_list:
            self.sudo().create(vals_list)  # sudo: the history follows any change its writer may make

    @api.model
    def _iot_payers_on(self, contract_dates):
        """{(contract id, day): (payer id, billed to parent)} of each (contract, day) that has a
        record on or before the day: the last one."""
        pairs = list(dict.fromkeys(contract_dates))
        if not pairs:
            return {}
        self.flush_model()
        self.env.cr.execute(SQL(
            """SELECT wanted.contract_id, wanted.day, payer.payer_id, payer.billed_to_parent
                 FROM unnest(%s::int[], %s::date[]) AS wanted(contract_id, day)
                 CROSS JOIN LATERAL (
                     SELECT change.payer_id, change.billed_to_parent
                       FROM iot_contract_payer change
                      WHERE change.contract_id = wanted.contract_id
                        AND coalesce(change.date_from, '-infinity') <= wanted.day
                      ORDER BY coalesce(change.date_from, '-infinity') DESC, change.id DESC
                      LIMIT 1) payer""",
            [contract_id for contract_id, _day in pairs], [day for _contract_id, day in pairs],
        ))
        return {(contract_id, day): (payer_id, flag) for contract_id, day, payer_id, flag in self.env.cr.fetchall()}
