from odoo.addons.iot_contract.tools.locks import LockNamespace
from odoo.tests import freeze_time, tagged
from odoo.tools import SQL

from .common import IotOrganizationCommon


@tagged("post_install", "-at_install")
class TestCollectiveClaims(IotOrganizationCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alone = cls._sub_contract(cls.customer, "CLM-ALONE", "plan", ["CLMA-1"])
        cls.north = cls._sub_contract(cls.sub_north, "CLM-N", "plan", ["CLMN-1"], bill_to="parent")
        cls.south = cls._sub_contract(cls.sub_south, "CLM-S", "plan", ["CLMS-1"], bill_to="parent")
        cls.south_bis = cls._sub_contract(cls.sub_south, "CLM-T", "plan", ["CLMT-1"], bill_to="parent")
        cls.Engine = cls.env["iot.billing.engine"]

    def _ids(self):
        return sorted((self.alone | self.north | self.south | self.south_bis).ids)

    def test_a_parent_is_one_unit_of_a_chunk(self):
        groups = self.Engine._iot_payer_groups(self._ids())
        self.assertIn((self.holding.id, sorted((self.north | self.south | self.south_bis).ids)), groups)
        self.assertIn((None, [self.alone.id]), groups)
        # A chunk of two contracts still takes the parent's three, and nothing more.
        self.env["ir.config_parameter"].sudo().set_param("iot_contract.billing_chunk_contracts", 2)
        claimed = self.Engine._claim_contracts(self._ids(), 2)
        self.assertEqual(set(claimed), set((self.north | self.south | self.south_bis).ids))
        counts = dict.fromkeys(self._ids(), 1)
        kept = self.Engine._fill_chunk(sorted(claimed) + [self.alone.id], counts)
        self.assertEqual(set(kept), set((self.north | self.south | self.south_bis).ids))

    def test_a_parent_held_elsewhere_is_skipped_whole(self):
        # Another worker holds the holding's collective invoice (its advisory lock).
        with self.registry.cursor() as other:
            other.execute(SQL("SELECT pg_advisory_xact_lock(%s, %s)", int(LockNamespace.COLLECTIVE_INVOICE),
                              self.holding.id))
            claimed = self.Engine._claim_contracts(self._ids(), 50)
            other.rollback()
        self.assertEqual(claimed, [self.alone.id], "none of the holding's contracts, the others claimed")

    def test_one_run_bills_the_parent_on_one_invoice_across_chunks(self):
        self.env["ir.config_parameter"].sudo().set_param("iot_contract.billing_chunk_contracts", 1)
        with freeze_time("2022-04-30"):
            status = self._run_billing("2022-04-30")
            self.assertEqual(status["state"], "running", "larger than a chunk: billed in the background")
            run = self.env["iot.billing.run"].browse(status["run_id"])
            for _unit in range(20):  # what the chunk crons do, without their commits
                if run.state != "running":
                    break
                self.Engine._work_once(run)
        self.assertEqual(run.state, "done")
        self.assertEqual(sorted(run.chunk_ids.mapped("contract_count")), [1, 3], "the parent's three in one chunk")
        invoices = run.invoice_ids
        collective = invoices.filtered(lambda move: move.partner_id == self.holding)
        self.assertEqual(len(collective), 1)
        self.assertEqual(collective.iot_schedule_ids.contract_id, self.north | self.south | self.south_bis)
        self.assertEqual((invoices - collective).partner_id, self.customer)
