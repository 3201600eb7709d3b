from datetime import date

from odoo.tests import HttpCase, tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestActivationTour(HttpCase, IotContractCommon):
    def test_activate_pending_device_through_the_wizard(self):
        device = self.Device.create(
            {
                "name": "IOT_NS542",
                "identifier": "NS542-TOUR",
                "partner_id": self.customer.id,
                "state": "pending",
                "contract_id": self.contract.id,
                "plan_id": self.plan.id,
            }
        )
        self.start_tour(
            "/odoo/action-iot_device.iot_device_action/%d" % device.id,
            "iot_contract_activation_tour",
            login="admin",
        )
        self.assertEqual(device.state, "active")
        item = device.current_item_id
        self.assertEqual(item.contract_id, self.contract)
        self.assertEqual(item.date_start, date(2022, 4, 1))
        self.assertEqual(len(item.schedule_ids), 12)
        self.assertEqual(item.schedule_ids[-1].date_to, date(2023, 3, 31))
