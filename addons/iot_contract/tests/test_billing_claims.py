from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, tagged

REFERENCES = ("IOT-CLAIM-BUSY", "IOT-CLAIM-FREE")


@tagged("post_install", "-at_install")
class TestBillingClaims(TransactionCase):
    """A run answered at once claims its contracts in a transaction whose snapshot may predate
    another transaction's change of one of them (the dunning cron writing its evaluation date,
    a user editing it): that contract is skipped, the others are billed.

    Other transactions only see committed data: the contracts are created and committed in
    their own cursor, and removed again in the cleanup.
    """

    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env["res.partner"].create({"name": "Claims customer"})
            plan = env["product.product"].create(
                {"name": "Claims plan", "type": "service", "list_price": 10.0, "iot_is_plan": True,
                 "taxes_id": [Command.clear()]}
            )
            contracts = env["iot.contract"].create([
                {"name": reference, "reference": reference, "partner_id": partner.id, "auto_post": False}
                for reference in REFERENCES
            ])
            env["iot.contract.item"].create([
                {"contract_id": contract.id, "product_id": plan.id, "date_start": "2022-04-01", "name": "Claimed item"}
                for contract in contracts
            ])
            self.records = {"partner": partner.id, "plan": plan.id, "contracts": contracts.ids}
        self.addCleanup(self._remove_committed_data)

    def _remove_committed_data(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            contracts = env["iot.contract"].browse(self.records["contracts"])
            schedules = env["iot.invoicing.schedule"].search([("contract_id", "in", contracts.ids)])
            invoices = schedules.invoice_id
            runs = invoices.iot_billing_run_id | env["iot.billing.run"].search(
                [("chunk_ids", "!=", False), ("date", "=", "2022-04-30")]
            )
            schedules.unlink()
            invoices.unlink()
            runs.unlink()
            contracts.item_ids.unlink()
            contracts.unlink()
            env["product.product"].browse(self.records["plan"]).product_tmpl_id.unlink()
            env["res.partner"].browse(self.records["partner"]).unlink()

    def test_contract_changed_after_the_snapshot_skips_only_itself(self):
        busy_id, free_id = self.records["contracts"]
        with self.registry.cursor() as request_cr:
            env = api.Environment(request_cr, SUPERUSER_ID, {})
            request_cr.execute("SELECT 1")  # the request's snapshot
            with self.registry.cursor() as other_cr:
                other_cr.execute("UPDATE iot_contract SET write_date = now() WHERE id = %s", [busy_id])
                other_cr.commit()
            answer = env["iot.billing.run"].api_run("2022-04-30")
            self.assertEqual(answer["state"], "done")
            self.assertEqual((answer["schedules_done"], answer["schedules_skipped"]), (1, 1))
            invoiced = env["iot.invoicing.schedule"].search(
                [("contract_id", "in", [busy_id, free_id]), ("invoice_date", "<=", "2022-04-30")]
            ).filtered(lambda schedule: schedule.state == "invoiced")
            self.assertEqual(invoiced.contract_id.ids, [free_id], "the contract nobody changed is billed")
            request_cr.commit()
