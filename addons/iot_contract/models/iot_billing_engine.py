import logging
import time

from odoo import Command, api, models
from odoo.tools import SQL

from ..tools import CommittedSteps, Outcome, is_concurrency_error, try_lock_for_billing
from ..tools.billing_types import ChunkOutcome, ChunkTally
from ..tools.locks import RowLock, claim_rows

_logger = logging.getLogger(__name__)

# Chunk size (system parameters of the same names override them). A chunk is at most this
# many contracts (one account.move create and post, see _bill_contracts) and, past its first
# contract, this many schedules (docs/benchmarks.md gives what a chunk costs).
CHUNK_CONTRACTS = 50
CHUNK_SCHEDULES = 10000
# How long a cron call waits, a second at a time, for contracts another worker holds or
# for a valuation step, before it leaves the run to a later call.
WAIT_SECONDS = 10
# What a chunk cron runs (data/iot_contract_cron.xml): how its copies are found.
CHUNK_CRON_CODE = "model._cron_process_runs()"


class IotBillingEngine(models.AbstractModel):
    """The billing engine: bills the due schedules of running ``iot.billing.run`` records.

    Two ways, one set of pieces:
    - *now* (``_bill_now``): a run that fits in one chunk is billed in the request that starts
      it, chunk after chunk in one transaction, every due contract tried once;
    - *in the background* (``_drive_runs``, the crons): one unit of work at a time
      (``_work_once``: prepare, a chunk, a step of a contract billed in steps, finish), each
      committed by the one committed-steps driver (``tools/committed_steps.py``).
    A chunk claims contracts no other transaction holds, values their schedules and invoices
    them (``iot.contract._iot_invoice_schedules``, through ``_create_invoices``). A contract
    with more due schedules than a chunk takes is billed in steps (stage, invoice, link, post)
    by the records that own the staged rows (``iot.billing.run.part`` / ``.line``).
    """

    _name = "iot.billing.engine"
    _description = "IoT Billing Engine"

    @api.model
    def _chunk_limits(self):
        """(contracts, schedules) a chunk takes at most."""
        get_param = self.env["ir.config_parameter"].sudo().get_param
        return (
            int(get_param("iot_contract.billing_chunk_contracts", CHUNK_CONTRACTS)),
            int(get_param("iot_contract.billing_chunk_schedules", CHUNK_SCHEDULES)),
        )

    @api.model
    def _fits_one_chunk(self, run):
        max_contracts, max_schedules = self._chunk_limits()
        counts = self._due_counts(run, run._due_schedule_domain())
        return len(counts) <= max_contracts and sum(counts.values()) <= max_schedules

    @api.model
    def _due_counts(self, run, domain=None):
        """{contract id: due schedules} of the run (``domain``: the run's remaining ones)."""
        groups = self.env["iot.invoicing.schedule"]._read_group(
            domain or run._iot_remaining_domain(), ["contract_id"], ["__count"]
        )
        return {contract.id: count for contract, count in groups}

    # ------------------------------------------------------------------
    # Billing now: a run answered at once
    # ------------------------------------------------------------------
    @api.model
    def _bill_now(self, run):
        """Bill the whole run in this transaction: every due contract is tried once, one held
        by another transaction is skipped (counted on the run)."""
        run._iot_prepare()
        excluded = set()
        while self._bill_chunk_at_once(run, excluded) is ChunkOutcome.BILLED:
            pass
        run._iot_finish()

    @api.model
    def _bill_chunk_at_once(self, run, excluded):
        """Bill the next chunk of a run answered at once; ``excluded``: the contracts this
        transaction has billed or found held already (updated)."""
        started = time.monotonic()
        counts = {cid: count for cid, count in self._due_counts(run).items() if cid not in excluded}
        if not counts:
            return ChunkOutcome.FINISHED
        claimed = self._claim_each(sorted(counts))
        kept = self._fill_chunk(claimed, counts)
        tally = self._invoice_contracts(run, kept)
        held = set(counts) - set(claimed)
        tally.skipped += sum(counts[contract_id] for contract_id in held)
        excluded.update(held, kept)
        self.env["iot.billing.run.chunk"]._record(run, tally, time.monotonic() - started)
        return ChunkOutcome.BILLED

    # ------------------------------------------------------------------
    # Billing in the background: units of work, each committed
    # ------------------------------------------------------------------
    @api.model
    def _drive_runs(self):
        """Work on running runs unit by unit, each in its own committed transaction.

        Called by the crons (the daily billing cron and the chunk crons) through Odoo 18's
        progress API (``CommittedSteps.report``). A crash loses at most the unit under way
        (rolled back: its schedules stay planned and a later unit bills them).
        """
        steps = CommittedSteps(self.env, crons=self._chunk_crons(), wait_seconds=WAIT_SECONDS)
        current = self.env["iot.billing.run"]

        def next_unit():
            nonlocal current
            runs = self.env["iot.billing.run"].sudo().search([("state", "=", "running")], order="id")
            for run in runs:
                current = run
                outcome = self._work_once(run.with_company(run.company_id))
                if outcome is not Outcome.WAIT:
                    return outcome
            # Every run waits: for another worker's chunk, or for a valuation step.
            return Outcome.WAIT if runs else Outcome.FINISHED

        def stop_run(error):
            # A bug, not a contract's failure (those are recorded per contract): stop the run visibly.
            _logger.error("Billing run %s stopped", current.id, exc_info=error)
            current._iot_stop(error)
            return Outcome.DONE

        steps.run(next_unit, on_failure=stop_run)
        runs = self.env["iot.billing.run"].sudo().search([("state", "=", "running")])
        steps.report(sum(runs.mapped("remaining_count")) + len(runs) if runs else 0)

    @api.model
    def _work_once(self, run):
        """The run's next unit of work, not committed (the driver commits it)."""
        if not run.prepared:
            if not run._iot_lock_self(SQL("prepared IS NOT TRUE")):
                return Outcome.WAIT
            run._iot_prepare()
            return Outcome.DONE
        if not try_lock_for_billing(self.env.cr, run.company_id.id):
            return Outcome.WAIT  # the valuation holds the company's schedules
        outcome = self._bill_next_chunk(run)
        if outcome is ChunkOutcome.FINISHED:
            if not run._iot_lock_self(SQL("state = 'running'")):
                return Outcome.WAIT  # another worker finishes it
            run._iot_finish()
            return Outcome.DONE
        return {ChunkOutcome.BILLED: Outcome.DONE, ChunkOutcome.RETRY: Outcome.RETRY}.get(outcome, Outcome.WAIT)

    @api.model
    def _bill_next_chunk(self, run):
        """Bill the next chunk of a run billed in the background: a step of a contract billed in
        steps if one can be had, else up to a chunk of the due contracts no one else holds."""
        started = time.monotonic()
        counts = self._due_counts(run)
        max_contracts, max_schedules = self._chunk_limits()
        Contract = self.env["iot.contract"]
        in_steps = self.env["iot.billing.run.part"]._contracts_in_steps(run)
        large = [
            contract_id
            for contract_id, count in counts.items()
            if count > max_schedules
            and contract_id not in in_steps
            and Contract.browse(contract_id)._iot_billed_in_steps()
        ]
        stepped = sorted(in_steps + large)
        # Several workers bill slices of one contract at once: claimed shared.
        if stepped and (claimed := self._claim_contracts(stepped, 1, RowLock.SHARED)):
            return self._bill_step(run, Contract.browse(claimed[0]), started)
        counts = {contract_id: count for contract_id, count in counts.items() if contract_id not in stepped}
        if not counts:
            return ChunkOutcome.HELD if stepped else ChunkOutcome.FINISHED
        kept = self._fill_chunk(self._claim_contracts(sorted(counts), max_contracts), counts)
        if not kept:
            return ChunkOutcome.HELD
        tally = self._invoice_contracts(run, kept)
        if not tally.schedules and not tally.errors:
            return ChunkOutcome.RETRY  # another worker billed them after this chunk's snapshot
        # A schedule held elsewhere is looked at again by a later chunk (billed there, or gone).
        tally.skipped = 0
        self.env["iot.billing.run.chunk"]._record(run, tally, time.monotonic() - started)
        return ChunkOutcome.BILLED

    # ------------------------------------------------------------------
    # Contracts: claimed, then invoiced chunk by chunk
    # ------------------------------------------------------------------
    @api.model
    def _claim_contracts(self, contract_ids, limit, lock=RowLock.EXCLUSIVE):
        """Lock up to ``limit`` of these contracts that no other transaction holds.

        Two workers of one run (or two runs) never bill the same contract at once: each bills
        the contracts it claimed, the locks end with its commit. A contract changed since this
        transaction began raises a serialization failure: the unit starts again.
        ``RowLock.SHARED``: several workers hold it at once (the slices of a contract billed
        in steps), none while another holds it alone.
        """
        self.env["iot.contract"].flush_model()
        return claim_rows(self.env.cr, "iot_contract", contract_ids, limit, lock)

    @api.model
    def _claim_each(self, contract_ids):
        """The contracts among these that this transaction can claim now, without waiting: in
        one statement, or, when one of them changed since this transaction's snapshot (another
        transaction wrote it), one by one, so that such a contract skips only itself."""
        try:
            with self.env.cr.savepoint(flush=False):
                return self._claim_contracts(contract_ids, len(contract_ids))
        except Exception as error:
            if not is_concurrency_error(error):
                raise
        claimed = []
        for contract_id in contract_ids:
            try:
                with self.env.cr.savepoint(flush=False):
                    claimed += self._claim_contracts([contract_id], 1)
            except Exception as error:
                if not is_concurrency_error(error):
                    raise
        return claimed

    @api.model
    def _fill_chunk(self, claimed, counts):
        """The claimed contracts one chunk takes, in order: at most the chunk's contracts and,
        past the first, its schedules."""
        max_contracts, max_schedules = self._chunk_limits()
        kept, total = [], 0
        for contract_id in claimed[:max_contracts]:
            if kept and total + counts[contract_id] > max_schedules:
                break
            kept.append(contract_id)
            total += counts[contract_id]
        return kept

    @api.model
    def _invoice_contracts(self, run, contract_ids):
        """Invoice the due schedules of these claimed contracts: together (one account.move
        create and post), or one by one when that fails, so that a failing contract is recorded
        and the others billed."""
        tally = ChunkTally(contracts=len(contract_ids))
        if not contract_ids:
            return tally
        schedules = self.env["iot.invoicing.schedule"].search(
            run._iot_remaining_domain() + [("contract_id", "in", contract_ids)], order="contract_id, id"
        )
        groups = [(contract, group.ids) for contract, group in schedules.grouped("contract_id").items()]
        batch = self._bill_contracts(run, groups) if len(groups) > 1 else None
        if batch is not None:
            tally += batch
        else:
            for contract, schedule_ids in groups:
                tally += self._bill_contract(run, contract, schedule_ids)
        return tally

    @api.model
    def _bill_contracts(self, run, groups):
        """Invoice several contracts in one savepoint; None (nothing kept) if any fails.

        A fleet of small contracts costs one account.move create and post per batch instead of
        per contract; on failure the caller bills them one by one.
        """
        schedule_ids = [schedule_id for _contract, ids in groups for schedule_id in ids]
        try:
            with self.env.cr.savepoint():
                schedules = self.env["iot.invoicing.schedule"]._iot_lock_planned(schedule_ids)
                invoices = schedules.contract_id._iot_invoice_schedules(schedules, run) if schedules else []
        except Exception:  # noqa: BLE001 - any failure: the contracts are billed one by one
            self.env.invalidate_all()
            return None
        return ChunkTally(
            schedules=len(schedules), skipped=len(schedule_ids) - len(schedules), invoices=len(invoices)
        )

    @api.model
    def _bill_contract(self, run, contract, schedule_ids):
        """Invoice one contract in a savepoint: its failure is recorded, the run goes on."""
        try:
            with self.env.cr.savepoint():
                schedules = self.env["iot.invoicing.schedule"]._iot_lock_planned(schedule_ids)
                invoices = contract._iot_invoice_schedules(schedules, run) if schedules else []
        except Exception as error:  # noqa: BLE001 - any error of one contract is recorded
            self.env.invalidate_all()
            if is_concurrency_error(error):
                # Another transaction invoiced, holds or deadlocked on them: nothing lost, nothing
                # billed twice; looked at again by a later chunk (in the background) or run.
                return ChunkTally(skipped=len(schedule_ids))
            _logger.warning("Billing run %s: contract %s failed: %s", run.id, contract.id, error)
            return ChunkTally(errors=[run._iot_error_vals(contract, str(error), len(schedule_ids))])
        return ChunkTally(
            schedules=len(schedules), skipped=len(schedule_ids) - len(schedules), invoices=len(invoices)
        )

    @api.model
    def _create_invoices(self, run, plans):
        """Create the invoices of ``plans`` in one ``account.move`` create, where an invoice costs
        most; ``plans``: ``[(contract, invoice date, [(line values, what the line bills)])]``.

        The contract's extra lines (``_iot_extra_invoice_lines``) are added to each. Returns
        ``[(invoice, [(product line, what it bills)])]``, the extra lines left out.
        """
        move_vals_list, billed_lists = [], []
        for contract, invoice_date, lines in plans:
            lines = lines + [(vals, None) for vals in contract._iot_extra_invoice_lines(invoice_date)]
            move_vals = contract._iot_prepare_invoice_vals(invoice_date)
            move_vals["iot_billing_run_id"] = run.id
            move_vals["invoice_line_ids"] = [Command.create(vals) for vals, _billed in lines]
            move_vals_list.append(move_vals)
            billed_lists.append([billed for _vals, billed in lines])
        # No "Invoice Created" note per invoice (a message and its notification rows each): the
        # invoice names its billing run (on its form), whose chatter tells what it made; the
        # followers and the tracking of the posting stay as Odoo does them.
        invoices = self.env["account.move"].with_context(mail_create_nolog=True).create(move_vals_list)
        invoices = invoices.with_env(self.env)
        return [
            (invoice, [(line, billed) for line, billed in invoice._iot_pair_product_lines(billed_list) if billed])
            for invoice, billed_list in zip(invoices, billed_lists, strict=True)
        ]

    # ------------------------------------------------------------------
    # Contracts billed in steps
    # ------------------------------------------------------------------
    # A contract with more due schedules than a chunk takes (a fleet of a million devices on
    # one contract) cannot be billed in one transaction under Odoo's time limits. Its run bills
    # it in committed steps; stages and links go on several workers at once:
    #   1. stage: a slice of its due schedules is valued, its parts are stored with the key of
    #      the invoice line they go to, and the schedules become "being invoiced";
    #   2. invoice: once none is left, the invoices are created (draft) from the parts' sums;
    #   3. link: slice by slice, the schedules are marked invoiced and their parts linked to the
    #      invoice lines (what the invoice's detail reads), the parts deleted;
    #   4. post: the invoices are posted (when the contract says so).
    # Each step finds where the contract stands from the database: a crash loses at most the
    # step under way, rolled back, and any worker goes on from there.
    @api.model
    def _bill_step(self, run, contract, started):
        """Do the next step of a contract billed in steps, claimed shared by this transaction.

        Slices (stages, links) go in parallel: each worker locks the schedules of its own slice.
        The invoice and the posting need the contract alone: taken only when no slice is under
        way. A step that finds the contract's state changed since its snapshot meets a
        serialization failure on the rows it locks, and starts again.
        """
        Part = self.env["iot.billing.run.part"]
        Chunk = self.env["iot.billing.run.chunk"]
        lines = self.env["iot.billing.run.line"].search([("run_id", "=", run.id), ("contract_id", "=", contract.id)])
        slice_size = self._chunk_limits()[1]
        contract_due = run._iot_remaining_domain() + [("contract_id", "=", contract.id)]
        due = self.env["iot.invoicing.schedule"]._iot_lock_slice(contract_due, slice_size)
        unbilled = lines.filtered(lambda line: not line.move_id)
        if not due and not unbilled:
            linked = Part._link_slice(run, contract, slice_size)
            if linked is None:
                return ChunkOutcome.HELD  # every slice left is another worker's
            if linked:
                Chunk._record(run, ChunkTally(schedules=linked), time.monotonic() - started)
                return ChunkOutcome.BILLED
        elif not due and self.env["iot.invoicing.schedule"].search_count(contract_due, limit=1):
            return ChunkOutcome.HELD  # the last stages are another worker's
        if not due and not self._claim_contracts(contract.ids, 1):
            return ChunkOutcome.HELD  # a slice is under way: the invoice and the posting wait
        tally = ChunkTally()
        try:
            with self.env.cr.savepoint():
                if due:
                    Part._stage(run, contract, due)
                elif unbilled:
                    tally.invoices = len(lines._invoice(run, contract))
                else:
                    lines._post(run, contract)
        except Exception as error:  # noqa: BLE001 - any error of one contract is recorded
            if is_concurrency_error(error):
                raise  # another transaction changed its rows: the step starts again
            self.env.invalidate_all()
            _logger.warning("Billing run %s: contract %s failed: %s", run.id, contract.id, error)
            # Undone with the contract alone: another worker's slice under way would stay staged.
            if not self._claim_contracts(contract.ids, 1):
                return ChunkOutcome.HELD
            if lines.move_id:
                # Complete and linked, the invoice waits in draft for the accountant.
                message = self.env._("Its invoice is left in draft, not posted: %(error)s", error=error)
                Part._delete_staged(run, contract)
            else:
                message = str(error)
                Part._unstage(run, contract)
            count = self.env["iot.invoicing.schedule"].search_count(
                run._due_schedule_domain() + [("contract_id", "=", contract.id)]
            )
            tally.errors.append(run._iot_error_vals(contract, message, count))
        tally.contracts = 0 if contract.id in Part._contracts_in_steps(run) else 1
        Chunk._record(run, tally, time.monotonic() - started)
        return ChunkOutcome.BILLED

    # ------------------------------------------------------------------
    # Workers
    # ------------------------------------------------------------------
    @api.model
    def _chunk_crons(self):
        """The active chunk crons: the two shipped and any copy of them. Odoo runs a cron on one
        worker at a time, so a cluster bills a run on at most as many workers as there are chunk
        crons: one per cron worker of the cluster (README, *Production layout*)."""
        # sudo: starting the chunk workers is part of running billing, which the Billing group
        # may do without any right on scheduled actions.
        return self.env["ir.cron"].sudo().search(
            [("model_id.model", "=", "iot.billing.run"), ("code", "=", CHUNK_CRON_CODE)], order="id"
        )

    @api.model
    def _trigger_workers(self):
        for cron in self._chunk_crons():
            cron._trigger()
