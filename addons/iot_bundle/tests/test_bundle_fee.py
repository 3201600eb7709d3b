from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged

from .common import IotBundleCommon


@tagged("post_install", "-at_install")
class TestBundleFee(IotBundleCommon):
    """The fee of a bundle item is the sum of its options, each prorated and rounded on its own."""

    def _invoice(self, date):
        run = self._run_billing(date)
        invoices = self.env["account.move"].browse(run["invoice_ids"])
        self.assertEqual(len(invoices), 1, run)
        return invoices

    @freeze_time("2022-05-02")
    def test_each_option_its_own_line_prorated(self):
        item = self._activate(self._pending_device("CAM-1"), "2022-04-15", plan=self.bundle)
        self.assertEqual(item.iot_option_ids.product_id, self.continuous | self.event_option)
        self.assertEqual(item.iot_fee_total, 9.0)
        april = self._period(item, 4)
        # 16 days of 30: 6.00 x 16 / 30 = 3.20 and 3.00 x 16 / 30 = 1.60
        self.assertEqual(april.fixed_amount, 4.80)
        invoice = self._invoice("2022-04-30")
        self.assertEqual(
            self._lines(invoice), [(self.continuous, 1.0, 3.20, 3.20), (self.event_option, 1.0, 1.60, 1.60)]
        )
        self.assertIn("CAM-1 — 7 days of continuous recording — ", invoice.invoice_line_ids[0].name)
        self.assertEqual(invoice.amount_untaxed, 4.80)
        self.assertEqual(invoice.amount_tax, 0.48)
        self.assertEqual(invoice.amount_total, 5.28)
        self.assertEqual(april.invoice_id, invoice)

    @freeze_time("2022-06-02")
    def test_option_lines_grouped_across_devices_and_per_device(self):
        items = [self._activate(self._pending_device("CAM-G%d" % n), "2022-04-01", plan=self.bundle) for n in (1, 2)]
        invoice = self._invoice("2022-04-30")
        # plan_period: one line per option for both devices, 2 x price
        self.assertEqual(self._lines(invoice), [(self.continuous, 2.0, 6.0, 12.0), (self.event_option, 2.0, 3.0, 6.0)])
        self.assertEqual(invoice.amount_untaxed, 18.0)
        self.contract.invoice_grouping = "none"
        items[0].iot_option_ids = [Command.create({"product_id": self.face_option.id})]
        invoice = self._invoice("2022-05-31")
        # one line per device and option: 2 x (6 + 3) + 4.50
        self.assertEqual(len(invoice.invoice_line_ids), 5)
        self.assertEqual(invoice.amount_untaxed, 22.50)

    @freeze_time("2022-05-02")
    def test_one_bundle_line_with_base_price(self):
        plan = self._create_plan(
            "Camera Base Bundle", "CAM-BASE", 10.0, self.tax_10, iot_is_bundle=True, iot_bundle_lines="bundle",
            iot_bundle_option_ids=[Command.set((self.continuous | self.face_option).ids)],
            iot_bundle_default_option_ids=[Command.set((self.continuous | self.face_option).ids)],
        )
        item = self._activate(self._pending_device("CAM-B"), "2022-04-11", plan=plan)
        invoice = self._invoice("2022-04-30")
        # 20 days of 30: 10.00 x 2/3 = 6.67, 6.00 x 2/3 = 4.00, 4.50 x 2/3 = 3.00
        self.assertEqual(self._lines(invoice), [(plan, 1.0, 13.67, 13.67)])
        self.assertIn(
            "Camera Base Bundle (7 days of continuous recording, Face recognition)", invoice.invoice_line_ids.name
        )
        self.assertEqual(self._period(item, 4).fixed_line_id,
                         invoice.invoice_line_ids)

    @freeze_time("2022-05-02")
    def test_option_change_replans_only_periods_not_invoiced(self):
        item = self._activate(self._pending_device("CAM-C"), "2022-04-01", plan=self.bundle)
        self._invoice("2022-04-30")
        item.iot_option_ids = [Command.create({"product_id": self.face_option.id})]
        self.assertEqual(self._period(item, 4).fixed_amount, 9.0)  # invoiced: never changed
        self.assertEqual(self._period(item, 5).fixed_amount, 13.5)
        item.iot_option_ids.filtered(lambda option: option.product_id == self.continuous).unlink()
        self.assertEqual(self._period(item, 5).fixed_amount, 7.5)

    @freeze_time("2022-05-02")
    def test_paused_suspension_prorates_each_option(self):
        self.bundle.iot_suspended_fees = "pause"
        device = self._pending_device("CAM-P")
        item = self._activate(device, "2022-04-01", plan=self.bundle)
        api = self.Device.with_user(self.integration_user)
        api.api_suspend([{"identifier": "CAM-P", "date": "2022-04-11"}])
        api.api_resume([{"identifier": "CAM-P", "date": "2022-04-21"}])
        invoice = self._invoice("2022-04-30")
        # 20 days billed of 30: 6.00 -> 4.00, 3.00 -> 2.00
        self.assertEqual([line[3] for line in self._lines(invoice)], [4.0, 2.0])
        self.assertEqual(self._period(item, 4).fixed_amount, 6.0)

    def test_termination_credits_the_options_invoiced_in_advance(self):
        self.contract.fixed_fee_timing = "advance"
        with freeze_time("2022-04-01"):
            item = self._activate(self._pending_device("CAM-T"), "2022-04-01", plan=self.bundle)
            invoice = self._invoice("2022-04-01")
        self.assertEqual(invoice.amount_untaxed, 9.0)
        with freeze_time("2022-04-12"):
            item.device_id.with_context(iot_transition_date="2022-04-10").action_terminate()
        refund = self.env["account.move"].search([("reversed_entry_id", "=", invoice.id)])
        # (6.00 + 3.00) - (6.00 x 10/30 + 3.00 x 10/30) = 9.00 - (2.00 + 1.00) = 6.00
        self.assertEqual(refund.amount_untaxed, 6.0)
        self.assertEqual(refund.amount_total, 6.6)

    def test_plan_change_bills_each_plan_for_its_days(self):
        premium = self.plan  # 15.00 a month
        with freeze_time("2022-05-11"):
            item = self._activate(self._pending_device("CAM-X"), "2022-05-01", plan=self.bundle)
            new_item = item._iot_change_plan(premium, item.date_start.replace(day=11))
        with freeze_time("2022-06-01"):
            invoice = self._invoice("2022-05-31")
        # bundle 1-10 May: 6.00 x 10/31 = 1.94, 3.00 x 10/31 = 0.97; premium 15.00 x 21/31 = 10.16
        self.assertEqual(sorted(line[3] for line in self._lines(invoice)), [0.97, 1.94, 10.16])
        self.assertEqual(invoice.amount_untaxed, 13.07)
        self.assertFalse(new_item.iot_option_ids)
