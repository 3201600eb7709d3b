from datetime import date

from odoo.tests import freeze_time, tagged

from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestUsageBillCycles(IotUsageCommon):
    """Usage on anniversary cycles: a period ends at midnight of its last day in the contract's
    time zone, a late reading re-rates the period it was measured in."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.plan = cls._create_plan("Metered Tracker", "METERED-ANNIV", 15.0, iot_bill_cycle="anniversary")
        cls.env["iot.usage.calculator"].create(
            {"name": "Energy", "product_tmpl_id": cls.plan.product_tmpl_id.id, "metric_id": cls.metric_kwh.id,
             "pricing": "per_unit", "unit_price": 0.5}
        )
        cls.contract = cls.env["iot.contract"].create(
            {"name": "New York", "reference": "NYC-1", "partner_id": cls.customer.id, "tz": "America/New_York"}
        )
        cls.contract.action_start()
        with freeze_time("2026-04-17"):
            result = cls.env["iot_billing.device"].api_activate(
                [{"identifier": "U-1", "contract": "NYC-1", "plan": "METERED-ANNIV", "date_start": "2026-04-17"}]
            )
        assert "error" not in result[0], result
        cls.item = cls.device_1.contract_item_ids
        cls.first = cls.item.schedule_ids.filtered(lambda s: s.date_from == date(2026, 4, 17))
        cls.second = cls.item.schedule_ids.filtered(lambda s: s.date_from == date(2026, 5, 17))

    def test_period_ends_at_local_midnight_of_the_16th(self):
        self.api.api_ingest([
            # New York is UTC-4 in May: 22:00 on the 16th, local, is in the first cycle ...
            self._reading(quantity="4", timestamp="2026-05-17T02:00:00Z"),
            # ... 01:00 on the 17th, local, in the second.
            self._reading(quantity="10", timestamp="2026-05-17T05:00:00Z"),
            # 00:30 on the 17th of April, local, is the first day of the first cycle.
            self._reading(quantity="2", timestamp="2026-04-17T04:30:00Z"),
        ])
        self._run("2026-05-17")
        self.assertEqual((self.first.state, self.first.usage_quantity, self.first.usage_amount), ("invoiced", 6, 3.0))
        self.assertEqual((self.second.state, self.second.usage_quantity), ("planned", 0))
        self._run("2026-06-16")
        self.assertEqual((self.second.state, self.second.usage_quantity), ("invoiced", 10))

    def test_late_reading_of_an_ended_anniversary_item_rerates_its_own_cycle(self):
        with freeze_time("2026-06-01"):
            self.env["iot_billing.device"].api_terminate([{"identifier": "U-1", "date": "2026-05-31"}])
        self._run("2026-06-16")  # the last cycle, 17 May - 31 May, prorated
        self.assertEqual(self.second.date_to, date(2026, 5, 31))
        self.assertEqual(self.second.state, "invoiced")
        self.api.api_ingest([self._reading(quantity="8", timestamp="2026-05-20T12:00:00Z", message_id="late")])
        self._run("2026-06-20")
        late = self.item.schedule_ids.filtered(lambda s: s.part == "late")
        self.assertEqual((late.date_from, late.date_to, late.state, late.usage_quantity),
                         (date(2026, 5, 17), date(2026, 5, 31), "invoiced", 8))
