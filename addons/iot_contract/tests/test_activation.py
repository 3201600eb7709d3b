from datetime import date

from freezegun import freeze_time

from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form, tagged

from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestActivation(IotContractCommon):
    def _assert_story_item(self, device, item):
        self.assertEqual(item.name, "IOT_NS542")
        self.assertEqual(item.contract_id, self.contract)
        self.assertEqual(item.product_id, self.plan)
        self.assertEqual((item.date_start, item.date_end), (date(2022, 4, 1), date(2023, 3, 31)))
        self.assertEqual(item.price_unit, 15.0)
        self.assertEqual(device.state, "active")
        self.assertEqual(device.current_item_id, item)
        self.assertEqual((device.contract_id, device.plan_id), (self.contract, self.plan))
        self.assertEqual(self.contract.state, "running")
        schedules = item.schedule_ids
        self.assertEqual(len(schedules), 12)
        self.assertEqual(schedules[0].date_from, date(2022, 4, 1))
        self.assertEqual(schedules[0].date_to, date(2022, 4, 30))
        self.assertEqual(schedules[-1].date_from, date(2023, 3, 1))
        self.assertEqual(schedules[-1].date_to, date(2023, 3, 31))
        self.assertEqual(set(schedules.mapped("fixed_amount")), {15.0})
        self.assertEqual(set(schedules.mapped("state")), {"planned"})
        self.assertEqual(schedules.device_id, device)
        self.assertEqual(schedules.contract_id, self.contract)
        activated = self._events(device, "activated")
        self.assertEqual(len(activated), 1)
        self.assertIn("IOT-FLEET-001", activated.description)
        self.assertIn("Premium Fleet Subscription", activated.description)

    @freeze_time("2022-04-01")
    def test_story_through_the_api(self):
        device = self._pending_device("NS542", "IOT_NS542")
        self.assertEqual(device.state, "pending")
        result = self.Device.with_user(self.integration_user).api_activate(
            [{"identifier": "NS542", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET", "date_start": "2022-04-01"}]
        )
        item = device.current_item_id
        self.assertEqual(result, [{"identifier": "NS542", "contract_item_id": item.id, "state": "active"}])
        self._assert_story_item(device, item)
        self.assertEqual(self._events(device, "activated").origin, "api")

    @freeze_time("2022-04-01")
    def test_story_through_the_wizard(self):
        device = self._pending_device("NS542", "IOT_NS542")
        action = device.with_user(self.iot_manager).action_open_activate_wizard()
        wizard_form = Form(self.env[action["res_model"]].with_user(self.iot_manager).with_context(action["context"]))
        self.assertEqual(wizard_form.partner_id, self.customer)
        wizard_form.contract_id = self.contract
        wizard_form.product_id = self.plan
        self.assertEqual(wizard_form.duration_months, 12)
        self.assertEqual(wizard_form.date_start, date(2022, 4, 1))
        wizard_form.save().action_activate()
        self._assert_story_item(device, device.current_item_id)
        self.assertEqual(self._events(device, "activated").origin, "ui")

    @freeze_time("2022-04-01")
    def test_wizard_prefilled_and_several_devices(self):
        devices = self._pending_device("D1") | self._pending_device("D2")
        devices.write({"contract_id": self.contract.id, "plan_id": self.plan.id})
        wizard_form = Form(
            self.env["iot_billing.device.activate.wizard"].with_context(
                active_model="iot_billing.device", active_ids=devices.ids
            )
        )
        # One click: everything is known.
        self.assertEqual((wizard_form.contract_id, wizard_form.product_id), (self.contract, self.plan))
        wizard_form.duration_months = 6
        action = wizard_form.save().action_activate()
        items = self.Item.search(action["domain"])
        self.assertEqual(items.device_id, devices)
        self.assertEqual(set(devices.mapped("state")), {"active"})
        self.assertEqual(set(items.mapped("date_end")), {date(2022, 9, 30)})
        self.assertEqual(len(items.schedule_ids), 12)

    def test_wizard_refuses_a_draft_device(self):
        device = self.Device.create({"name": "Draft one", "identifier": "DRAFT-1", "partner_id": self.customer.id})
        wizard = self.env["iot_billing.device.activate.wizard"].create(
            {"device_ids": device.ids, "contract_id": self.contract.id, "product_id": self.plan.id}
        )
        with self.assertRaisesRegex(UserError, "draft: confirm it"):
            wizard.action_activate()
        self.assertFalse(device.contract_item_ids)

    @freeze_time("2022-04-01")
    def test_api_uses_what_the_device_knows(self):
        device = self._pending_device("KNOWN")
        device.write({"contract_id": self.contract.id, "plan_id": self.plan.id})
        result = self.Device.with_user(self.integration_user).api_activate([{"identifier": "KNOWN"}])
        self.assertEqual(result[0]["state"], "active")
        item = self.Item.browse(result[0]["contract_item_id"])
        self.assertEqual((item.contract_id, item.product_id), (self.contract, self.plan))
        self.assertEqual(item.date_start, date(2022, 4, 1))  # today by default
        self.assertEqual(len(item.schedule_ids), 12)

    @freeze_time("2022-04-01")
    def test_item_created_directly_activates_its_device(self):
        device = self._pending_device("DIRECT")
        item = self.Item.create(
            {
                "contract_id": self.contract.id,
                "device_id": device.id,
                "product_id": self.plan.id,
                "date_start": "2022-04-01",
            }
        )
        self.assertEqual(device.state, "active")
        self.assertEqual(item.name, "DIRECT")
        self.assertEqual(len(item.schedule_ids), 12)
        plain = self.Item.create(
            {
                "contract_id": self.contract.id,
                "product_id": self.plan.id,
                "name": "Support",
                "date_start": "2022-04-01",
                "duration_months": 3,
                "price_unit": 40.0,
            }
        )
        self.assertEqual(plain.schedule_ids.mapped("fixed_amount"), [40.0, 40.0, 40.0])

    @freeze_time("2022-04-01")
    def test_api_per_entry_errors(self):
        other_customer = self.env["res.partner"].create({"name": "Other customer"})
        self._pending_device("OK-1")
        self._pending_device("OTHER", partner=other_customer)
        active = self._pending_device("ACTIVE")
        self._activate(active)
        self.Device.create({"name": "Draft", "identifier": "DRAFT"})
        self._pending_device("NOTHING")
        self.Device.create({"name": "Closed", "identifier": "CLOSED-1", "state": "pending"})
        closed = self.env["iot.contract"].create(
            {"name": "Old", "reference": "OLD", "partner_id": self.customer.id, "state": "closed"}
        )
        results = self.Device.with_user(self.integration_user).api_activate(
            [
                {"identifier": "OK-1", "contract": self.contract.id, "plan": self.plan.id},
                {"identifier": "NOPE", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                {"identifier": "ACTIVE", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                {"identifier": "DRAFT", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                {"identifier": "NOTHING"},
                {"identifier": "OK-1", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                {"identifier": "OTHER", "contract": "IOT-FLEET-001", "plan": "PREMIUM-FLEET"},
                {"identifier": "CLOSED-1", "contract": "OLD", "plan": "PREMIUM-FLEET"},
                {"identifier": "NOTHING", "contract": "NO-SUCH", "plan": "PREMIUM-FLEET"},
                {"identifier": "NOTHING", "contract": "IOT-FLEET-001", "plan": "NO-PLAN"},
                {"identifier": "NOTHING", "date_start": "2022-02-30"},
                {"identifier": "NOTHING", "duration_months": 0},
                {"identifier": "NOTHING", "contract": 1.5},
                "not an object",
            ]
        )
        self.assertEqual(results[0]["state"], "active")
        self.assertEqual(closed.state, "closed")
        errors = [result.get("error") for result in results]
        self.assertIsNone(errors[0])
        self.assertEqual(errors[1], "unknown device 'NOPE'")
        self.assertEqual(errors[2], "device is already active")
        self.assertEqual(errors[3], "device is draft: confirm it before activating it")
        self.assertEqual(errors[4], "no contract given and the device has none")
        self.assertEqual(errors[5], "device 'OK-1' appears twice in the batch")
        self.assertEqual(errors[6], "contract IOT-FLEET-001 belongs to another customer")
        self.assertEqual(errors[7], "contract OLD is closed")
        self.assertEqual(errors[8], "unknown contract 'NO-SUCH'")
        self.assertEqual(errors[9], "unknown plan 'NO-PLAN'")
        self.assertIn("'date_start' '2022-02-30' is not a 'YYYY-MM-DD' date", errors[10])
        self.assertIn("duration_months", errors[11])
        self.assertIn("'contract' must be an id or a reference", errors[12])
        self.assertIn("must be an object", errors[13])
        self.assertEqual([r["identifier"] for r in results[:3]], ["OK-1", "NOPE", "ACTIVE"])
        # The active device kept its single item.
        self.assertEqual(len(active.contract_item_ids), 1)

    def test_api_rejects_oversized_batches(self):
        with self.assertRaisesRegex(ValueError, "exceeds the limit"):
            self.Device.with_user(self.integration_user).api_activate([{}] * 10001)

    @freeze_time("2022-04-01")
    def test_one_open_item_per_device(self):
        device = self._pending_device("ONCE")
        self._activate(device)
        with self.assertRaisesRegex(ValidationError, "already has a running contract item"):
            self.Item.create({"contract_id": self.contract.id, "device_id": device.id, "product_id": self.plan.id})
