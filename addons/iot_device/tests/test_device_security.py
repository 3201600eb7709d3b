from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import IotDeviceCommon


@tagged("post_install", "-at_install")
class TestDeviceSecurity(IotDeviceCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company_b = cls.env["res.company"].create({"name": "IoT Company B"})
        cls.device_a = cls.Device.create({"name": "A-1", "identifier": "A-1"})
        cls.device_b = cls.Device.create(
            {"name": "B-1", "identifier": "B-1", "company_id": cls.company_b.id}
        )
        cls.manager_b = new_test_user(
            cls.env,
            login="iot_manager_b",
            groups="iot_device.group_iot_manager",
            company_id=cls.company_b.id,
            company_ids=[(6, 0, cls.company_b.ids)],
        )

    def test_companies_do_not_see_each_other_devices(self):
        visible_a = self.Device.with_user(self.iot_manager).search([("identifier", "in", ["A-1", "B-1"])])
        self.assertEqual(visible_a, self.device_a)
        visible_b = self.Device.with_user(self.manager_b).search([("identifier", "in", ["A-1", "B-1"])])
        self.assertEqual(visible_b, self.device_b)
        with self.assertRaises(AccessError):
            self.device_b.with_user(self.iot_manager).read(["name"])
        events_b = self.env["iot_billing.device.event"].with_user(self.iot_manager).search(
            [("device_id", "=", self.device_b.id)]
        )
        self.assertFalse(events_b)

    def test_api_of_one_company_cannot_touch_the_other(self):
        api_b = self.Device.with_user(self.manager_b)
        result = api_b.api_post_events(
            [{"identifier": "A-1", "event_type": "x", "timestamp": "2022-04-14T10:00:00Z"}]
        )
        self.assertIn("unknown device", result["rejected"][0]["reason"])
        registered = api_b.api_register([{"identifier": "A-1", "name": "Hijack"}])
        self.assertTrue(registered[0]["created"], "company B gets its own device A-1")
        self.assertEqual(self.device_a.name, "A-1")

    def test_integration_user_reads_no_partner_but_its_own(self):
        Partner = self.env["res.partner"].with_user(self.integration_user)
        self.assertFalse(Partner.search([("id", "=", self.customer.id)]))
        with self.assertRaises(AccessError):
            self.customer.with_user(self.integration_user).read(["email"])

    def test_integration_user_cannot_delete_or_manage(self):
        api = self.Device.with_user(self.integration_user)
        result = api.api_register([{"identifier": "INT-1", "partner": self.customer.id}])
        device = api.browse(result[0]["id"])
        with self.assertRaises(AccessError):
            device.unlink()
        with self.assertRaises(AccessError):
            self.env["iot_billing.device.type"].with_user(self.integration_user).create(
                {"name": "Rogue", "code": "rogue"}
            )

    def test_iot_user_reads_but_cannot_write(self):
        device = self.device_a.with_user(self.iot_user)
        self.assertEqual(device.name, "A-1")
        with self.assertRaises(AccessError):
            device.write({"name": "changed"})
        with self.assertRaises(AccessError):
            self.Device.with_user(self.iot_user).api_register([{"identifier": "U-1"}])
