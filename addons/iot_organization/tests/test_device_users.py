from datetime import date, datetime

from odoo.exceptions import ValidationError
from odoo.tests import freeze_time, new_test_user, tagged

from .common import IotOrganizationCommon


@tagged("post_install", "-at_install")
class TestDeviceUsers(IotOrganizationCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.contract = cls._sub_contract(cls.sub_north, "DU-1", "none", ["DU-A", "DU-B"])
        cls.device_a = cls.Device.search([("identifier", "=", "DU-A")])
        cls.device_b = cls.Device.search([("identifier", "=", "DU-B")])
        Partner = cls.env["res.partner"]
        cls.alice = Partner.create({"name": "Alice Driver", "parent_id": cls.sub_north.id})
        cls.bob = Partner.create({"name": "Bob Driver", "parent_id": cls.sub_north.id})
        DeviceUser = cls.env["iot_billing.device.user"]
        cls.alice_april = DeviceUser.create({"device_id": cls.device_a.id, "partner_id": cls.alice.id,
                                             "date_from": "2022-04-01", "date_to": "2022-04-15"})
        cls.bob_since = DeviceUser.create({"device_id": cls.device_a.id, "partner_id": cls.bob.id,
                                           "date_from": "2022-04-16"})

    def test_periods_of_a_device_never_overlap(self):
        DeviceUser = self.env["iot_billing.device.user"]
        with self.assertRaises(ValidationError) as caught:
            DeviceUser.create({"device_id": self.device_a.id, "partner_id": self.alice.id,
                               "date_from": "2022-05-01", "date_to": "2022-05-31"})
        self.assertIn("already has a user from 04/16/2022 to now (Bob Driver)", str(caught.exception))
        with self.assertRaises(ValidationError) as caught:
            self.alice_april.date_to = "2022-04-16"
        self.assertIn("cannot overlap", str(caught.exception))
        # Another device may have the same person over the same days.
        DeviceUser.create({"device_id": self.device_b.id, "partner_id": self.alice.id, "date_from": "2022-04-01"})
        self.assertEqual(self.device_a.device_user_ids, self.alice_april | self.bob_since)

    def test_current_user_on_the_device(self):
        with freeze_time("2022-04-10"):
            self.device_a.invalidate_recordset(["current_device_user_id"])
            self.assertEqual(self.device_a.current_device_user_id, self.alice)
        with freeze_time("2022-06-01"):
            self.device_a.invalidate_recordset(["current_device_user_id"])
            self.assertEqual(self.device_a.current_device_user_id, self.bob)
            self.assertFalse(self.device_b.current_device_user_id)

    def test_events_name_the_user_at_their_time(self):
        Event = self.env["iot_billing.device.event"]
        events = Event.create([
            {"device_id": self.device_a.id, "event_type": "door_open", "date": datetime(2022, 4, 10, 9)},
            {"device_id": self.device_a.id, "event_type": "door_open", "date": datetime(2022, 4, 20, 9)},
            {"device_id": self.device_b.id, "event_type": "door_open", "date": datetime(2022, 4, 20, 9)},
        ])
        self.assertEqual([event.device_user_id for event in events], [self.alice, self.bob, self.env["res.partner"]])

    def test_detail_names_the_users_of_each_period(self):
        invoice = self._run("2022-04-30")
        rows = self._detail_csv(invoice)
        header, body = rows[0], rows[1:-1]
        device, user, customer = header.index("Device"), header.index("Device user"), header.index("Customer")
        users = {row[device]: row[user] for row in body}
        self.assertEqual(users, {self.device_a.name: "Alice Driver, Bob Driver", self.device_b.name: ""})
        self.assertEqual({row[customer] for row in body}, {"North Subsidiary"})
        self.assertEqual(self.alice_april.date_to, date(2022, 4, 15))

    def test_device_users_stay_in_their_company(self):
        other = self.env["res.company"].create({"name": "Org Other Company"})
        device = self.Device.with_company(other).create(
            {"name": "DU-OTHER", "identifier": "DU-OTHER", "company_id": other.id}
        )
        usage = self.env["iot_billing.device.user"].create(
            {"device_id": device.id, "partner_id": self.alice.id, "date_from": "2022-04-01"}
        )
        self.assertEqual(usage.company_id, other)
        reader = new_test_user(self.env, login="du_reader", groups="iot_device.group_iot_user",
                               company_id=self.company.id, company_ids=[self.company.id])
        visible = self.env["iot_billing.device.user"].with_user(reader).search([("partner_id", "=", self.alice.id)])
        self.assertEqual(visible, self.alice_april, "the other company's device user is not readable")
