from odoo.tests import tagged

from .common import IotGroupingCommon


@tagged("post_install", "-at_install")
class TestGroupingPolicies(IotGroupingCommon):
    def _contract_with_usage(self, policy, prefix):
        """6 devices: 3 lights, 3 meters; 2 tags; one starting mid-April (prorated)."""
        contract = self._fleet("GRP-%s" % policy.upper(), 6, policy, prefix)
        devices = contract.item_ids.device_id.sorted("identifier")
        devices[:3].write({"tag_ids": [(6, 0, self.tag_north.ids)]})
        devices[3:].write({"tag_ids": [(6, 0, self.tag_south.ids)]})
        analytic_plan = self.env["account.analytic.plan"].create({"name": "Sites %s" % policy})
        north = self.env["account.analytic.account"].create({"name": "North", "plan_id": analytic_plan.id})
        contract.item_ids.filtered(lambda item: item.device_id in devices[:3]).analytic_distribution = {
            str(north.id): 100
        }
        self._activate(contract.reference, [prefix + "-LATE"], "2022-04-16")  # prorated first period
        self.env["iot.usage"].api_ingest([
            {"identifier": device.identifier, "metric": "kwh", "quantity": str(1234.5 * (n + 1)),
             "timestamp": "2022-04-10T00:00:00Z", "message_id": "%s-%d" % (policy, n)}
            for n, device in enumerate(devices)
        ])
        return contract

    def test_each_policy_is_exact(self):
        expected_lines = {
            "none": 7 + 6,          # 7 fixed fees, 6 usage parts
            "plan": 1 + 1 + 1,      # full fee, prorated fee, usage
            "plan_period": 1 + 1 + 1,
            "plan_metric": 1 + 1 + 1,
            "device_type": 2 + 1 + 2,  # full fee per type, prorated (one type), usage per type
            "device_tag": 2 + 1 + 2,   # the late device has no tag
            "analytic": 2 + 1 + 2,
        }
        totals = {}
        for policy, line_count in expected_lines.items():
            with self.subTest(policy=policy):
                contract = self._contract_with_usage(policy, "P" + policy.replace("_", "").upper())
                invoice = self._run("2022-04-30")
                self.assertEqual(invoice.invoice_origin, contract.reference)
                self.assertEqual(len(invoice.invoice_line_ids), line_count, invoice.invoice_line_ids.mapped("name"))
                totals[policy] = self._assert_exact(invoice)
                self.assertEqual(len(invoice.iot_schedule_ids), 7)
                for line in invoice.invoice_line_ids:
                    self.assertTrue(line.iot_schedule_ids, "every line knows its schedules")
        self.assertEqual(len(set(totals.values())), 1, "every policy bills the same amount: %s" % totals)

    def test_grouped_line_reads_like_a_person_wrote_it(self):
        contract = self._fleet("GRP-LABEL", 3, "plan_period", "LBL")
        invoice = self._run("2022-04-30")
        self.assertEqual(invoice.invoice_origin, contract.reference)
        line = invoice.invoice_line_ids
        self.assertEqual(len(line), 1)
        self.assertEqual(line.name, "Premium Fleet Subscription — April 2022 — 3 devices")
        self.assertEqual((line.quantity, line.price_unit, line.price_subtotal), (3.0, 9.99, 29.97))
        self.assertEqual(invoice.amount_tax, invoice.currency_id.round(29.97 * 0.21))

    def test_company_default_policy(self):
        self.env.company.iot_invoice_grouping = "device_type"
        contract = self.env["iot.contract"].create(
            {"name": "Defaulted", "reference": "GRP-DEFAULT", "partner_id": self.customer.id}
        )
        self.assertEqual(contract.invoice_grouping, "device_type")
