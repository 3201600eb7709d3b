from datetime import date

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time
from lxml import etree

from odoo import fields
from odoo.tests import tagged
from odoo.tools.safe_eval import datetime as safe_datetime
from odoo.tools.safe_eval import safe_eval

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestEndOfTerm(IotContractCommon):
    """At the end of its term an item is renewed (same plan, another term) or ended (device
    terminated and blocked), as its contract or plan says."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ending_plan = cls._create_plan("Ending plan", "ENDING", 15.0, iot_end_of_term="end")
        cls.api = cls.Device.with_user(cls.integration_user)
        cls.api.api_register(
            [{"identifier": identifier, "partner": cls.customer.id} for identifier in ("TERM-R", "TERM-E")]
        )
        with freeze_time("2022-04-01"):
            result = cls.api.api_activate(
                [
                    {
                        "identifier": "TERM-R",
                        "plan": "PREMIUM-FLEET",
                        "contract": "IOT-FLEET-001",
                        "date_start": "2022-04-01",
                        "duration_months": 3,
                    },
                    {
                        "identifier": "TERM-E",
                        "plan": "ENDING",
                        "contract": "IOT-FLEET-001",
                        "date_start": "2022-04-01",
                        "duration_months": 3,
                    },
                ]
            )
        cls.renewing, cls.ending = (cls.Item.browse(entry["contract_item_id"]) for entry in result)

    def _cron(self, day, **kwargs):
        with freeze_time(day):
            return self.Item._cron_end_of_term(**kwargs)

    def test_renewing_item_gets_another_term_on_its_last_day(self):
        self.assertEqual(self.plan.iot_end_of_term, "renew")
        self.assertEqual(self.renewing.date_end, date(2022, 6, 30))
        self._cron("2022-06-29")
        self.assertEqual(self.renewing.date_end, date(2022, 6, 30), "not before its last day")
        self._cron("2022-06-30")
        self.assertEqual((self.renewing.date_end, self.renewing.state), (date(2022, 9, 30), "running"))
        self.assertEqual((self.renewing.product_id, self.renewing.price_unit), (self.plan, 15.0))
        planned = self.renewing.schedule_ids.filtered(lambda s: s.state == "planned").sorted("date_from")
        self.assertEqual(len(planned), 6)
        self.assertEqual(planned[-1].date_to, date(2022, 9, 30))
        self.assertEqual(set(planned.mapped("fixed_amount")), {15.0})
        event = self.renewing.device_id.event_ids.filtered(lambda e: e.event_type == "renewed")
        self.assertEqual(event.description, "Term renewed until 2022-09-30")
        self.assertEqual(self.renewing.device_id.state, "active")
        self.assertFalse(self.renewing.device_id.command_ids)
        self.assertIn("renewed until 2022-09-30", self.contract.message_ids[0].body)

    def test_a_missed_renewal_catches_up_to_today(self):
        self._cron("2022-10-05")  # the cron did not run for months
        self.assertEqual(self.renewing.date_end, date(2022, 12, 31))

    def test_ending_item_terminates_its_device_the_day_after_its_term(self):
        self._cron("2022-06-30")
        self.assertEqual(self.ending.state, "running", "still in its last day")
        self._cron("2022-07-01")
        device = self.ending.device_id
        self.assertEqual((self.ending.state, self.ending.date_end), ("terminated", date(2022, 6, 30)))
        self.assertEqual(device.state, "terminated")
        event = device.event_ids.filtered(lambda e: e.event_type == "terminated")
        self.assertEqual(event.description, "Term ended on 2022-06-30")
        self.assertEqual(device.command_ids.mapped("command"), ["block"])
        self.assertEqual(
            self.ending.schedule_ids.filtered(lambda s: s.state != "cancelled").mapped("date_to"),
            [date(2022, 4, 30), date(2022, 5, 31), date(2022, 6, 30)],
        )

    def test_the_contract_overrides_the_plan(self):
        self.contract.end_of_term = "end"
        self._cron("2022-07-01")
        self.assertEqual((self.renewing.state, self.ending.state), ("terminated", "terminated"))
        self.assertEqual(self.renewing.device_id.command_ids.mapped("command"), ["block"])

    def test_cron_works_in_batches_and_reports_progress(self):
        self.assertEqual(self._cron("2022-07-01", batch_size=1), 1)
        self.assertEqual(self.ending.state, "terminated")
        self.assertEqual(self.renewing.date_end, date(2022, 6, 30), "left for the next call")
        self.assertEqual(self._cron("2022-07-01", batch_size=1), 1)
        self.assertEqual(self.renewing.date_end, date(2022, 9, 30))
        self.assertEqual(self._cron("2022-07-01", batch_size=1), 0)
        cron = self.env.ref("iot_contract.iot_contract_item_end_of_term_cron")
        self.assertEqual((cron.interval_number, cron.interval_type, cron.active), (1, "days", True))
        xml_id = self.env["ir.model.data"].search(
            [("module", "=", "iot_contract"), ("name", "=", "iot_contract_item_end_of_term_cron")]
        )
        self.assertTrue(xml_id.noupdate, "an upgrade keeps what the administrator set")

    @freeze_time("2022-06-05")
    def test_ending_in_30_days_filter(self):
        later = self.Item.create(
            {"contract_id": self.contract.id, "product_id": self.plan.id, "date_start": "2022-04-01", "name": "Long"}
        )
        arch = etree.fromstring(self.env.ref("iot_contract.iot_contract_item_view_search").arch)
        domain = safe_eval(
            arch.xpath("//filter[@name='ending_soon']")[0].get("domain"),
            {
                "context_today": lambda: fields.Date.context_today(self.Item),
                "relativedelta": relativedelta,
                "datetime": safe_datetime,
            },
        )
        found = self.Item.search(domain + [("contract_id", "=", self.contract.id)])
        self.assertEqual(found, self.renewing | self.ending)
        self.assertNotIn(later, found)
