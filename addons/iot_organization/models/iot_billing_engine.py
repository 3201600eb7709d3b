import logging

from odoo import Command, api, models
from odoo.addons.iot_contract.tools import is_concurrency_error
from odoo.addons.iot_contract.tools.billing_types import ChunkTally
from odoo.addons.iot_contract.tools.locks import LockNamespace, RowLock, try_advisory_lock
from odoo.tools import SQL

_logger = logging.getLogger(__name__)


class IotBillingEngine(models.AbstractModel):
    """Collective invoices: the contracts billed to one parent are claimed, chunked, invoiced and,
    on failure, retried together, so that each period of theirs goes on one invoice."""

    _inherit = "iot.billing.engine"

    @api.model
    def _iot_payer_groups(self, contract_ids):
        """``contract_ids`` in the units billed together, in the order of their first contract:
        the contracts billed to one parent (same payer and company) together, any other alone.
        ``[(payer id or None, [contract ids])]``."""
        self.env["iot.contract"].flush_model(["iot_billed_to_parent", "iot_payer_id", "company_id"])
        self.env.cr.execute(SQL(
            "SELECT id, iot_payer_id, company_id FROM iot_contract WHERE id = ANY(%s) AND iot_billed_to_parent",
            list(contract_ids),
        ))
        payer_of = {contract_id: (payer_id, company_id) for contract_id, payer_id, company_id in self.env.cr.fetchall()}
        groups = {}
        for contract_id in contract_ids:
            key = payer_of.get(contract_id) or ("contract", contract_id)
            groups.setdefault(key, []).append(contract_id)
        return [(None if key[0] == "contract" else key[0], ids) for key, ids in groups.items()]

    @api.model
    def _claim_contracts(self, contract_ids, limit, lock=RowLock.EXCLUSIVE):
        """Claim by payer: the contracts of a collective invoice are claimed all at once, by the
        one transaction holding the payer's advisory lock, even past ``limit`` (a chunk bills
        a parent whole); another worker skips the payer until that transaction commits."""
        groups = self._iot_payer_groups(contract_ids)
        if lock != RowLock.EXCLUSIVE or all(payer_id is None for payer_id, _ids in groups):
            return super()._claim_contracts(contract_ids, limit, lock)
        claimed, alone = [], []
        for payer_id, ids in groups:
            if payer_id is None:
                alone += ids
                continue
            if len(claimed) >= limit:
                break
            if try_advisory_lock(self.env.cr, LockNamespace.COLLECTIVE_INVOICE, payer_id):
                claimed += super()._claim_contracts(ids, len(ids), lock)
        if alone and len(claimed) < limit:
            claimed += super()._claim_contracts(alone, limit - len(claimed), lock)
        return claimed

    @api.model
    def _fill_chunk(self, claimed, counts):
        """As the base, with a parent's contracts as one unit: never split over two chunks (the
        first unit is taken whole, whatever its size)."""
        groups = self._iot_payer_groups(claimed)
        if all(payer_id is None for payer_id, _ids in groups):
            return super()._fill_chunk(claimed, counts)
        max_contracts, max_schedules = self._chunk_limits()
        kept, total = [], 0
        for _payer_id, ids in groups:
            size = sum(counts[contract_id] for contract_id in ids)
            if kept and (len(kept) + len(ids) > max_contracts or total + size > max_schedules):
                break
            kept += ids
            total += size
        return kept

    @api.model
    def _invoice_contracts(self, run, contract_ids):
        """As the base, but when the chunk's batch fails, a parent's contracts are retried
        together (one collective invoice), the others one by one."""
        groups = self._iot_payer_groups(contract_ids)
        if all(payer_id is None for payer_id, _ids in groups):
            return super()._invoice_contracts(run, contract_ids)
        tally = ChunkTally(contracts=len(contract_ids))
        schedules = self.env["iot.invoicing.schedule"].search(
            run._iot_remaining_domain() + [("contract_id", "in", contract_ids)], order="contract_id, id"
        )
        by_contract = {
            contract.id: (contract, group.ids) for contract, group in schedules.grouped("contract_id").items()
        }
        batch = self._bill_contracts(run, list(by_contract.values())) if len(by_contract) > 1 else None
        if batch is not None:
            tally += batch
            return tally
        for _payer_id, ids in groups:
            members = [by_contract[contract_id] for contract_id in ids if contract_id in by_contract]
            if len(members) == 1:
                tally += self._bill_contract(run, *members[0])
            elif members:
                tally += self._iot_bill_collective(run, members)
        return tally

    @api.model
    def _iot_bill_collective(self, run, members):
        """Invoice the contracts of one collective invoice in one savepoint; on failure, each
        is listed on the run with the error (the invoice is made whole or not at all)."""
        schedule_ids = [schedule_id for _contract, ids in members for schedule_id in ids]
        try:
            with self.env.cr.savepoint():
                schedules = self.env["iot.invoicing.schedule"]._iot_lock_planned(schedule_ids)
                invoices = schedules.contract_id._iot_invoice_schedules(schedules, run) if schedules else []
        except Exception as error:  # noqa: BLE001 - any error of the collective invoice is recorded
            self.env.invalidate_all()
            if is_concurrency_error(error):
                return ChunkTally(skipped=len(schedule_ids))
            _logger.warning("Billing run %s: collective invoice failed: %s", run.id, error)
            message = self.env._("Collective invoice of %(payer)s: %(error)s",
                                 payer=members[0][0].iot_payer_id.display_name, error=error)
            return ChunkTally(errors=[run._iot_error_vals(contract, message, len(ids)) for contract, ids in members])
        return ChunkTally(
            schedules=len(schedules), skipped=len(schedule_ids) - len(schedules), invoices=len(invoices)
        )

    @api.model
    def _create_invoices(self, run, plans):
        """As the base for a contract billed itself; the plans of contracts billed to one parent
        on one invoice date become one invoice: a section per subsidiary, then the lines of its
        contracts exactly as their own invoices would have them (with their extra lines)."""
        Contract = self.env["iot.contract"]
        payers = Contract._iot_payers_on([(contract, invoice_date) for contract, invoice_date, _lines in plans])
        collective = {}
        for index, (contract, invoice_date, _lines) in enumerate(plans):
            payer, billed_to_parent = payers[(contract, invoice_date)]
            key = contract._iot_collective_key(invoice_date, payer, billed_to_parent)
            if key is not None:
                collective.setdefault(key, []).append(index)
        if not collective:
            return super()._create_invoices(run, plans)
        in_collective = {index for indexes in collective.values() for index in indexes}
        own = [index for index in range(len(plans)) if index not in in_collective]
        results = [None] * len(plans)
        for index, result in zip(own, super()._create_invoices(run, [plans[i] for i in own]) if own else [],
                                 strict=True):
            results[index] = result
        move_vals_list, layouts = [], []
        for key, indexes in collective.items():
            move_vals, layout = self._iot_collective_invoice_vals(
                run, Contract.env["res.partner"].browse(key[0]), [(index, plans[index]) for index in indexes]
            )
            move_vals_list.append(move_vals)
            layouts.append(layout)
        invoices = self.env["account.move"].create(move_vals_list)
        for invoice, layout in zip(invoices, layouts, strict=True):
            paired = invoice._iot_pair_product_lines(
                [billed for _index, billed_list in layout for billed in billed_list]
            )
            for index, billed_list in layout:
                own_lines, paired = paired[:len(billed_list)], paired[len(billed_list):]
                results[index] = (invoice, [(line, billed) for line, billed in own_lines if billed])
        return results

    @api.model
    def _iot_collective_invoice_vals(self, run, payer, indexed_plans):
        """(move values, ``[(plan index, what each product line bills)]``) of one collective
        invoice. The invoice goes to the payer with the payer's payment term and fiscal position
        (the first contract's when the payer has none); each line keeps the taxes its contract
        mapped. Sections follow the subsidiaries' names, then their contracts' references."""
        indexed_plans = sorted(
            indexed_plans,
            key=lambda item: ((item[1][0].partner_id.name or "").lower(), item[1][0].partner_id.id,
                              item[1][0].reference, item[1][0].id),
        )
        first, invoice_date = indexed_plans[0][1][0], indexed_plans[0][1][1]
        payer = payer.with_company(first.company_id)
        move_vals = first._iot_prepare_invoice_vals(invoice_date)
        fiscal_position = self.env["account.fiscal.position"].with_company(first.company_id)._get_fiscal_position(payer)
        move_vals.update(
            partner_id=payer.id,
            iot_billing_run_id=run.id,
            invoice_payment_term_id=(payer.property_payment_term_id or first.payment_term_id).id,
            fiscal_position_id=(fiscal_position or first.fiscal_position_id).id,
            invoice_origin=self.env._("Collective invoice: %(count)s contracts", count=len(indexed_plans))
            if len(indexed_plans) > 1 else first.reference,
            ref=self.env._("Collective invoice of %(payer)s", payer=payer.name),
        )
        commands, layout, section_partner = [], [], None
        for index, (contract, date, lines) in indexed_plans:
            if contract.partner_id != section_partner:
                section_partner = contract.partner_id
                commands.append(Command.create({"display_type": "line_section", "name": section_partner.name}))
            lines = lines + [(vals, None) for vals in contract._iot_extra_invoice_lines(date)]
            commands += [Command.create(vals) for vals, _billed in lines]
            layout.append((index, [billed for _vals, billed in lines]))
        move_vals["invoice_line_ids"] = commands
        return move_vals, layout
