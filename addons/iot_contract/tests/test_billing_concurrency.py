from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, new_test_user, tagged

REFERENCE = "IOT-CONCURRENCY-TEST"


@tagged("post_install", "-at_install")
class TestBillingConcurrency(TransactionCase):
    """Two real transactions billing the same schedules at the same time.

    Other transactions only see committed data: the contract is created and
    committed in its own cursor, and removed again in the cleanup.
    """

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env["res.partner"].create({"name": "Concurrency customer"})
            plan = env["product.product"].create(
                {
                    "name": "Concurrency plan",
                    "type": "service",
                    "list_price": 10.0,
                    "iot_is_plan": True,
                    "taxes_id": [Command.clear()],
                }
            )
            contract = env["iot.contract"].create(
                {"name": "Concurrency", "reference": REFERENCE, "partner_id": partner.id, "auto_post": False}
            )
            item = env["iot.contract.item"].create(
                {
                    "contract_id": contract.id,
                    "product_id": plan.id,
                    "date_start": "2022-04-01",
                    "name": "Concurrent item",
                }
            )
            # Runs are started by a Billing user, committed like the rest for the other cursors.
            billing_user = new_test_user(env, login="iot_concurrency_billing", groups="iot_contract.group_iot_billing")
            self.records = {
                "billing_user": billing_user.id,
                "partner": partner.id,
                "plan": plan.id,
                "contract": contract.id,
                "item": item.id,
                "company": contract.company_id.id,
            }
        self.run_ids = []
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            schedules = env["iot.invoicing.schedule"].search([("contract_id", "=", self.records["contract"])])
            invoices = schedules.invoice_id
            runs = env["iot.billing.run"].browse(self.run_ids).exists()
            schedules.unlink()
            invoices.unlink()
            runs.unlink()
            env["iot.contract.item"].browse(self.records["item"]).unlink()
            env["iot.contract"].browse(self.records["contract"]).unlink()
            env["product.product"].browse(self.records["plan"]).product_tmpl_id.unlink()
            env["res.partner"].browse(self.records["partner"]).unlink()
            billing_user = env["res.users"].browse(self.records["billing_user"])
            billing_partner = billing_user.partner_id
            billing_user.unlink()
            billing_partner.unlink()

    def _run(self, env):
        env = env(user=self.records["billing_user"])
        run = env["iot.billing.run"].create({"date": "2022-04-30", "company_id": self.records["company"]})
        self.run_ids.append(run.id)
        run.action_run()
        return run

    def _invoiced(self, env):
        return env["iot.invoicing.schedule"].search(
            [("contract_id", "=", self.records["contract"]), ("state", "=", "invoiced")]
        )

    def test_concurrent_runs_never_bill_twice(self):
        with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
            env1 = api.Environment(cr1, SUPERUSER_ID, {})
            env2 = api.Environment(cr2, SUPERUSER_ID, {})
            cr2.execute("SELECT 1")  # cr2's snapshot is taken before run 1 commits
            run1 = self._run(env1)
            self.assertEqual((run1.schedule_count, run1.invoice_count), (1, 1))

            # Run 2 while run 1 holds the lock: SKIP LOCKED leaves the schedule alone.
            run2 = self._run(env2)
            self.assertEqual((run2.schedule_count, run2.invoice_count, run2.skipped_count), (0, 0, 1))
            self.assertEqual(run2.state, "done")
            cr1.commit()

            # Run 3 in the old snapshot after run 1 committed: a serialization
            # failure, handled as "taken by another run", not as an error.
            run3 = self._run(env2)
            self.assertEqual((run3.invoice_count, run3.skipped_count, run3.state), (0, 1, "done"))
            cr2.commit()

        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            run4 = self._run(env)
            self.assertEqual((run4.contract_count, run4.invoice_count), (0, 0))
            invoiced = self._invoiced(env)
            self.assertEqual(len(invoiced), 1)
            self.assertEqual(len(invoiced.invoice_id), 1)
            self.assertEqual(len(invoiced.invoice_line_ids), 1)
            cr.commit()

    def test_lock_query_skips_rows_locked_elsewhere(self):
        with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
            env1 = api.Environment(cr1, SUPERUSER_ID, {})
            env2 = api.Environment(cr2, SUPERUSER_ID, {})
            ids = (
                env1["iot.invoicing.schedule"]
                .search([("contract_id", "=", self.records["contract"])], order="date_from", limit=3)
                .ids
            )
            locked = env1["iot.invoicing.schedule"]._iot_lock_planned(ids[:2])
            self.assertEqual(set(locked.ids), set(ids[:2]))
            others = env2["iot.invoicing.schedule"]._iot_lock_planned(ids)
            self.assertEqual(set(others.ids), set(ids[2:]))
            cr1.rollback()
            cr2.rollback()
