from psycopg2 import IntegrityError

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged
from odoo.tools import mute_logger

from .common import IotDeviceCommon


@tagged("post_install", "-at_install")
class TestDeviceLifecycle(IotDeviceCommon):
    def _new_ui_device(self, identifier="UI-0001"):
        with Form(self.Device.with_user(self.iot_manager)) as form:
            form.name = "Meter %s" % identifier
            form.identifier = identifier
            form.device_type_id = self.device_type_meter
            form.partner_id = self.customer
        return form.record

    def test_ui_creation_starts_in_draft_with_created_event(self):
        device = self._new_ui_device()
        self.assertEqual(device.state, "draft")
        created = self._events(device)
        self.assertEqual(created.mapped("event_type"), ["created"])
        self.assertEqual(created.origin, "ui")
        self.assertEqual(created.user_id, self.iot_manager)

    def test_full_life_cycle_logs_each_transition(self):
        device = self._new_ui_device().with_user(self.iot_manager)
        device.action_confirm()
        self.assertEqual(device.state, "pending")
        device.action_activate()
        self.assertEqual(device.state, "active")
        device.action_suspend()
        self.assertEqual(device.state, "suspended")
        device.action_resume()
        self.assertEqual(device.state, "active")
        device.action_terminate()
        self.assertEqual(device.state, "terminated")
        # The Events tab lists newest first; ids break ties within the same second.
        self.assertEqual(
            device.event_ids.mapped("event_type"),
            ["terminated", "resumed", "suspended", "activated", "confirmed", "created"],
        )
        self.assertEqual(device.event_count, 6)

    def test_refused_transitions(self):
        device = self._new_ui_device().with_user(self.iot_manager)
        refused = {
            "draft": ("action_activate", "action_suspend", "action_resume", "action_terminate"),
            "pending": ("action_confirm", "action_suspend", "action_resume"),
            "active": ("action_confirm", "action_activate", "action_resume"),
            "terminated": (
                "action_confirm",
                "action_activate",
                "action_suspend",
                "action_resume",
                "action_terminate",
            ),
        }
        path = {"pending": "action_confirm", "active": "action_activate", "terminated": "action_terminate"}
        for state, actions in refused.items():
            if state in path:
                getattr(device, path[state])()
            self.assertEqual(device.state, state)
            events_before = device.event_count
            for action in actions:
                with self.subTest(state=state, action=action), self.assertRaises(UserError):
                    getattr(device, action)()
            device.invalidate_recordset()
            self.assertEqual(device.state, state, "a refused transition changes nothing")
            self.assertEqual(device.event_count, events_before, "a refused transition logs nothing")

    def test_transition_on_mixed_states_is_refused_as_a_whole(self):
        draft = self._new_ui_device("UI-A")
        pending = self._new_ui_device("UI-B")
        pending.action_confirm()
        with self.assertRaisesRegex(UserError, "UI-A"):
            (draft | pending).action_activate()
        self.assertEqual(pending.state, "pending")

    def test_only_draft_devices_can_be_deleted(self):
        device = self._new_ui_device()
        device.action_confirm()
        with self.assertRaises(UserError):
            device.unlink()
        draft = self._new_ui_device("UI-DEL")
        draft.unlink()
        self.assertFalse(draft.exists())

    def test_iot_user_cannot_change_state(self):
        device = self._new_ui_device()
        with self.assertRaises(AccessError):
            device.with_user(self.iot_user).action_confirm()
        self.assertEqual(device.state, "draft")

    def test_identifier_unique_per_company(self):
        self._new_ui_device("DUP-1")
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"), self.cr.savepoint():
            self.Device.create({"name": "Other", "identifier": "DUP-1"})
        other_company = self.env["res.company"].create({"name": "Other IoT Co"})
        twin = self.Device.create(
            {"name": "Twin", "identifier": "DUP-1", "company_id": other_company.id}
        )
        self.assertEqual(twin.identifier, "DUP-1")
