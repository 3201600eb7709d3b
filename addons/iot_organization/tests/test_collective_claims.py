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

    def test_a_failing_subsidiary_fails_its_collective_invoice_whole(self):
        """An accounting error on one subsidiary's lines: the parent's invoice is not made (every
        one of its contracts listed with the error, its periods still planned), the contract billed
        itself is; once fixed, the next run bills the parent's periods once."""
        account = self.env["account.account"].create({"name": "Old IoT income", "code": "799011",
                                                      "account_type": "income"})
        legacy = self._create_plan("Legacy plan", "ORG-LEGACY", 9.0, property_account_income_id=account.id)
        account.deprecated = True
        self.Item.create({"contract_id": self.south_bis.id, "product_id": legacy.id, "date_start": "2022-04-01",
                          "name": "Legacy"})
        with freeze_time("2022-04-30"):
            result = self._run_billing("2022-04-30")
        members = self.north | self.south | self.south_bis
        self.assertEqual({error["contract"] for error in result["errors"]}, set(members.mapped("reference")))
        self.assertTrue(all("Collective invoice of Holding Group" in error["message"] for error in result["errors"]))
        invoices = self.env["account.move"].browse(result["invoice_ids"])
        self.assertEqual(invoices.partner_id, self.customer, "the contract billed itself is invoiced")
        schedules = members.item_ids.schedule_ids
        self.assertEqual(set(schedules.mapped("state")), {"planned"})
        account.deprecated = False
        again = self._run("2022-04-30")
        self.assertEqual(again.partner_id, self.holding)
        april = schedules.filtered(lambda schedule: schedule.invoice_date.isoformat() <= "2022-04-30")
        self.assertEqual(len(april), 4, "April of the three contracts and of the legacy item")
        self.assertEqual(set(april.mapped("state")), {"invoiced"})
        self.assertEqual(april.invoice_id, again)
