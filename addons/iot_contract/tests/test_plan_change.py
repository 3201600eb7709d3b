from datetime import date

from freezegun import freeze_time

from odoo.tests import Form, tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestPlanChange(IotContractCommon):
    """A plan change splits the period of the change between the two plans; what was invoiced
    keeps its plan and price."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.gold = cls._create_plan("Gold Fleet", "GOLD", 30.0, cls.tax_10)
        cls.advance = cls.env["iot.contract"].create(
            {
                "name": "Advance",
                "reference": "ADV-PLAN",
                "partner_id": cls.customer.id,
                "journal_id": cls.sale_journal.id,
                "fixed_fee_timing": "advance",
            }
        )
        cls.api = cls.Device.with_user(cls.integration_user)
        cls.api.api_register(
            [{"identifier": identifier, "partner": cls.customer.id} for identifier in ("PLAN-ARR", "PLAN-ADV")]
        )
        with freeze_time("2022-04-01"):
            result = cls.api.api_activate(
                [
                    {"identifier": "PLAN-ARR", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                    {"identifier": "PLAN-ADV", "contract": "ADV-PLAN", "plan": "PREMIUM-FLEET"},
                ]
            )
        cls.arrears_item, cls.advance_item = (cls.Item.browse(entry["contract_item_id"]) for entry in result)

    def _fees(self, item):
        return [
            (s.date_from, s.date_to, s.fixed_amount, s.state)
            for s in item.schedule_ids.sorted("date_from")
            if s.state != "cancelled" and s.date_from < date(2022, 7, 1)
        ]

    @freeze_time("2022-05-11")
    def test_api_upgrade_prorates_the_month_between_both_plans(self):
        result = self.api.api_change_plan(
            [
                {"identifier": "PLAN-ARR", "plan": "GOLD", "date": "2022-05-11"},
                {"identifier": "PLAN-ADV", "plan": "PREMIUM-FLEET", "date": "2022-05-11"},
                {"identifier": "NOPE", "plan": "GOLD"},
                {"identifier": "PLAN-ADV", "plan": "SILVER"},
                {"identifier": "PLAN-ADV", "plan": "GOLD", "date": "2022-03-01"},
                {"identifier": "PLAN-ADV"},
            ]
        )
        new_item = self.Item.browse(result[0]["contract_item_id"])
        self.assertEqual(result[0], {"identifier": "PLAN-ARR", "contract_item_id": new_item.id, "plan": "GOLD"})
        self.assertIn("already on plan", result[1]["error"])
        self.assertEqual(result[2], {"identifier": "NOPE", "error": "unknown device 'NOPE'"})
        self.assertEqual(result[3], {"identifier": "PLAN-ADV", "error": "unknown plan 'SILVER'"})
        self.assertIn("before the item's start", result[4]["error"])
        self.assertEqual(result[5], {"identifier": "PLAN-ADV", "error": "'plan' must be an id or a reference"})
        self.assertEqual(self.advance_item.product_id, self.plan, "bad entries change nothing")

        old = self.arrears_item
        self.assertEqual((old.state, old.date_end), ("terminated", date(2022, 5, 10)))
        self.assertEqual(
            self._fees(old),
            [
                (date(2022, 4, 1), date(2022, 4, 30), 15.0, "planned"),
                (date(2022, 5, 1), date(2022, 5, 10), 4.84, "planned"),  # 15.00 x 10 / 31
            ],
        )
        self.assertEqual((new_item.product_id, new_item.price_unit, new_item.state), (self.gold, 30.0, "running"))
        self.assertEqual((new_item.date_start, new_item.date_end), (date(2022, 5, 11), date(2023, 3, 31)))
        self.assertEqual(
            self._fees(new_item),
            [
                (date(2022, 5, 11), date(2022, 5, 31), 20.32, "planned"),  # 30.00 x 21 / 31
                (date(2022, 6, 1), date(2022, 6, 30), 30.0, "planned"),
            ],
        )
        device = new_item.device_id
        self.assertEqual((device.state, device.current_item_id, device.plan_id), ("active", new_item, self.gold))
        event = device.event_ids.filtered(lambda e: e.event_type == "plan_changed")
        self.assertEqual(
            event.description,
            "Plan changed from [PREMIUM-FLEET] Premium Fleet Subscription to [GOLD] Gold Fleet as of 2022-05-11",
        )

        with freeze_time("2022-06-01"):
            result = self._run_billing("2022-05-31")
        may = (
            self.env["account.move"]
            .browse(result["invoice_ids"])
            .filtered(lambda move: move.invoice_date == date(2022, 5, 31) and move.invoice_origin == "IOT-FLEET-001")
        )
        lines = may.invoice_line_ids.sorted("price_unit")
        self.assertEqual(
            [(line.product_id, line.price_unit) for line in lines], [(self.plan, 4.84), (self.gold, 20.32)]
        )
        self.assertEqual((may.amount_untaxed, may.amount_total), (25.16, 27.67))  # tax per line: 0.48 + 2.03

    @freeze_time("2022-05-11")
    def test_invoiced_periods_stay_frozen_and_days_paid_in_advance_are_credited(self):
        billed = (
            self.env["account.move"]
            .browse(self._run_billing("2022-05-01")["invoice_ids"])
            .filtered(lambda move: move.invoice_origin == "ADV-PLAN")
        )
        self.assertEqual(sorted(billed.mapped("amount_untaxed")), [15.0, 15.0])  # April and May in advance
        wizard = Form(
            self.env["iot.contract.item.change.plan.wizard"].with_context(
                active_model="iot_billing.device", active_ids=self.advance_item.device_id.ids
            )
        )
        wizard.product_id = self.gold
        wizard.date = date(2022, 5, 11)
        action = wizard.save().action_change_plan()
        new_item = self.Item.search(action["domain"])
        old = self.advance_item
        by_start = {schedule.date_from: schedule for schedule in old.schedule_ids if schedule.part == "fee"}
        april, may = by_start[date(2022, 4, 1)], by_start[date(2022, 5, 1)]
        # What was invoiced keeps the plan and price it was billed with.
        self.assertEqual((april.state, april.fixed_amount, april.product_id), ("invoiced", 15.0, self.plan))
        self.assertEqual((april.fixed_line_id.product_id, april.fixed_line_id.price_unit), (self.plan, 15.0))
        self.assertEqual((may.state, may.fixed_amount, may.date_to), ("invoiced", 15.0, date(2022, 5, 31)))
        # May 11-31 on the old plan is credited: 15.00 - 4.84.
        refund = self.env["account.move"].search([("iot_contract_id", "=", self.advance.id)])
        self.assertEqual((refund.amount_untaxed, refund.reversed_entry_id), (10.16, may.invoice_id))
        self.assertEqual(may.credit_line_id, refund.invoice_line_ids)
        # ... and billed on the new one at the next run.
        result = self._run_billing("2022-05-11")
        gold = (
            self.env["account.move"]
            .browse(result["invoice_ids"])
            .filtered(lambda move: move.invoice_origin == "ADV-PLAN")
        )
        self.assertEqual((gold.invoice_line_ids.product_id, gold.amount_untaxed), (self.gold, 20.32))
        self.assertEqual(new_item.schedule_ids.filtered(lambda s: s.date_from == date(2022, 5, 11)).invoice_id, gold)
