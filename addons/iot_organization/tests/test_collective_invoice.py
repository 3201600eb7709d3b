from collections import defaultdict
from decimal import Decimal

from odoo.tests import freeze_time, tagged

from .common import IotOrganizationCommon, UndoState


@tagged("post_install", "-at_install")
class TestCollectiveInvoice(IotOrganizationCommon):
    def _subsidiary_contracts(self, policy):
        """Per subsidiary a fleet with usage, a prorated device and tags; South has two contracts."""
        code = policy.replace("_", "").upper()
        contracts = self.env["iot.contract"]
        for partner, suffix, count in ((self.sub_north, "N", 4), (self.sub_south, "S", 3), (self.sub_south, "T", 2)):
            reference = "ORG-%s-%s" % (code, suffix)
            identifiers = ["%s%s-%03d" % (code, suffix, n) for n in range(count)]
            contract = self._sub_contract(partner, reference, policy, identifiers)
            self._activate(reference, ["%s%s-LATE" % (code, suffix)], "2022-04-16")
            devices = contract.item_ids.device_id.sorted("identifier")
            devices[::2].write({"tag_ids": [(6, 0, self.tag_north.ids)]})
            self.env["iot.usage"].api_ingest([
                {"identifier": device.identifier, "metric": "kwh", "quantity": str(1111.7 * (n + 1)),
                 "timestamp": "2022-04-10T00:00:00Z", "message_id": "%s-%d" % (reference, n)}
                for n, device in enumerate(devices)
            ])
            contracts |= contract
        return contracts

    @staticmethod
    def _line_facts(lines):
        return [
            (line.name, line.quantity, line.price_unit, tuple(line.tax_ids.ids), line.price_subtotal,
             line.price_total, line.analytic_distribution or {}, line.product_id.id, line.iot_schedule_ids.ids)
            for line in lines.sorted(lambda line: (line.sequence, line.id))
        ]

    def _own_invoices(self, contracts):
        """What the contracts' own invoices would be, billed with Bill Self, then undone."""
        own = defaultdict(list)
        totals = defaultdict(lambda: [Decimal(0), Decimal(0)])
        try:
            with self.env.cr.savepoint():
                invoices = self._run("2022-04-30")
                self.assertEqual(len(invoices), len(contracts), "one invoice per contract with Bill Self")
                for invoice in invoices.sorted(lambda move: move.invoice_origin):
                    self.assertIn(invoice.partner_id, self.sub_north | self.sub_south)
                    own[invoice.partner_id] += self._line_facts(invoice.invoice_line_ids)
                    totals[invoice.partner_id][0] += Decimal(str(invoice.amount_untaxed))
                    totals[invoice.partner_id][1] += Decimal(str(invoice.amount_tax))
                raise UndoState
        except UndoState:
            pass
        self.env.invalidate_all()
        return own, totals

    def test_collective_invoice_is_the_subsidiaries_invoices_under_each_policy(self):
        for policy in ("none", "plan", "plan_period", "plan_metric", "device_type", "device_tag", "analytic"):
            with self.subTest(policy=policy):
                contracts = self._subsidiary_contracts(policy)
                own, totals = self._own_invoices(contracts)
                self.assertEqual(set(own), {self.sub_north, self.sub_south})
                with freeze_time("2022-04-01"):  # billed to the parent from April on
                    contracts.write({"iot_bill_to": "parent"})
                self.assertEqual(contracts.iot_payer_id, self.holding)
                invoice = self._run("2022-04-30")
                self.assertEqual(len(invoice), 1, "one collective invoice for the period")
                self.assertEqual(invoice.partner_id, self.holding)
                self.assertEqual(invoice.invoice_date.isoformat(), "2022-04-30")
                sections = invoice.invoice_line_ids.filtered(lambda line: line.display_type == "line_section")
                self.assertEqual(sections.mapped("name"), ["North Subsidiary", "South Subsidiary"])
                # The lines under each section are the subsidiary's own invoices' lines.
                by_section, current = defaultdict(lambda: self.env["account.move.line"]), None
                for line in invoice.invoice_line_ids.sorted(lambda line: (line.sequence, line.id)):
                    if line.display_type == "line_section":
                        current = line.name
                    else:
                        by_section[current] |= line
                for partner in (self.sub_north, self.sub_south):
                    self.assertEqual(self._line_facts(by_section[partner.name]), own[partner], partner.name)
                    self.assertEqual(
                        Decimal(str(sum(by_section[partner.name].mapped("price_subtotal")))).quantize(Decimal("0.01")),
                        totals[partner][0].quantize(Decimal("0.01")),
                    )
                untaxed = sum(total[0] for total in totals.values())
                tax = sum(total[1] for total in totals.values())
                self.assertEqual(Decimal(str(invoice.amount_untaxed)).quantize(Decimal("0.01")),
                                 untaxed.quantize(Decimal("0.01")))
                self.assertEqual(Decimal(str(invoice.amount_tax)).quantize(Decimal("0.01")),
                                 tax.quantize(Decimal("0.01")))
                self._assert_exact(invoice)
                self.assertEqual(invoice.state, "posted")
                self._assert_detail_split(invoice, totals)

    def _assert_detail_split(self, invoice, totals):
        """The detail has a Customer column, rows sorted by subsidiary, sums per subsidiary
        equal to its section and a total equal to the invoice."""
        rows = self._detail_csv(invoice)
        header, body, total_row = rows[0], rows[1:-1], rows[-1]
        customer = header.index("Customer")
        amount = header.index("Amount")
        customers = [row[customer] for row in body]
        self.assertEqual(customers, sorted(customers), "rows come subsidiary by subsidiary")
        sums = defaultdict(Decimal)
        for row in body:
            sums[row[customer]] += Decimal(row[amount])
        self.assertEqual(
            {name: value.quantize(Decimal("0.01")) for name, value in sums.items()},
            {partner.name: total[0].quantize(Decimal("0.01")) for partner, total in totals.items()},
        )
        self.assertEqual(Decimal(total_row[amount]).quantize(Decimal("0.01")),
                         Decimal(str(invoice.amount_untaxed)).quantize(Decimal("0.01")))

    def test_bill_self_and_parent_side_by_side(self):
        """The holding's collective invoice takes only the contracts billed to it."""
        north = self._sub_contract(self.sub_north, "ORG-MIX-N", "plan_period", ["MIXN-1", "MIXN-2"], bill_to="parent")
        south = self._sub_contract(self.sub_south, "ORG-MIX-S", "plan_period", ["MIXS-1"])
        invoices = self._run("2022-04-30")
        self.assertEqual(len(invoices), 2)
        collective = invoices.filtered(lambda move: move.partner_id == self.holding)
        own = invoices - collective
        self.assertEqual(own.partner_id, self.sub_south)
        self.assertFalse(own.invoice_line_ids.filtered(lambda line: line.display_type == "line_section"))
        self.assertEqual(collective.iot_schedule_ids.contract_id, north)
        self.assertEqual(own.iot_schedule_ids.contract_id, south)
        self.assertEqual(collective.amount_untaxed, 19.98)

    def test_printed_invoice_has_a_subtotal_per_section(self):
        self._sub_contract(self.sub_north, "ORG-PDF-N", "plan_period", ["PDFN-1", "PDFN-2"], bill_to="parent")
        self._sub_contract(self.sub_south, "ORG-PDF-S", "plan_period", ["PDFS-1"], bill_to="parent")
        invoice = self._run("2022-04-30")
        html, _kind = self.env["ir.actions.report"]._render_qweb_html("account.report_invoice", invoice.ids)
        html = html.decode()
        north, south = html.index("North Subsidiary"), html.index("South Subsidiary")
        self.assertLess(north, south)
        self.assertEqual(html.count("Subtotal"), 2, "Odoo prints one subtotal under each section")
        north_part, south_part = html[north:south], html[south:]
        self.assertIn("19.98", north_part[north_part.index("Subtotal"):], "North's two devices")
        self.assertIn("9.99", south_part[south_part.index("Subtotal"):], "South's device")
