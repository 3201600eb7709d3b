from odoo import Command
from odoo.addons.iot_contract.tests.common import IotContractCommon


class IotBundleCommon(IotContractCommon):
    """A camera bundle (a pure bundle: the plan's own price is 0) offering three service options
    with the settings they imply, two of them by default; no demo data."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Setting = cls.env["iot.bundle.setting"]
        cls.recording_days = Setting.create({"name": "Recording days", "code": "recording_days"})
        cls.events = Setting.create({"name": "Event recording", "code": "event_recording", "value_type": "boolean"})
        cls.faces = Setting.create({"name": "Face recognition", "code": "face_recognition", "value_type": "boolean"})
        cls.quality = Setting.create(
            {"name": "Quality", "code": "quality", "value_type": "choice", "choices": "low, medium, high"}
        )
        cls.continuous = cls._create_option("7 days of continuous recording", "OPT-CONT7", 6.0,
                                            {cls.recording_days: "7"})
        cls.event_option = cls._create_option("7 days of event recording", "OPT-EVT7", 3.0, {cls.events: "true"})
        cls.face_option = cls._create_option("Face recognition", "OPT-FACE", 4.5, {cls.faces: "yes"})
        cls.bundle = cls._create_plan(
            "Camera Bundle", "CAM-BUNDLE", 0.0, cls.tax_10,
            iot_is_bundle=True,
            iot_bundle_option_ids=[Command.set((cls.continuous | cls.event_option | cls.face_option).ids)],
            iot_bundle_default_option_ids=[Command.set((cls.continuous | cls.event_option).ids)],
            iot_setting_value_ids=[
                Command.create({"setting_id": cls.quality.id, "value": "medium"}),
                Command.create({"setting_id": cls.recording_days.id, "value": "1"}),
                Command.create({"setting_id": cls.faces.id, "value": "false"}),
            ],
        )

    @classmethod
    def _create_option(cls, name, code, price, settings):
        return cls.env["product.product"].create({
            "name": name,
            "default_code": code,
            "type": "service",
            "list_price": price,
            "iot_is_service_option": True,
            "taxes_id": [Command.set(cls.tax_10.ids)],
            "iot_setting_value_ids": [
                Command.create({"setting_id": setting.id, "value": value}) for setting, value in settings.items()
            ],
        })

    def _lines(self, invoice):
        return [
            (line.product_id, line.quantity, line.price_unit, line.price_subtotal)
            for line in invoice.invoice_line_ids.sorted("sequence")
        ]

    def _period(self, item, month):
        """The item's schedule of ``month`` 2022 (not cancelled)."""
        return item.schedule_ids.filtered(
            lambda schedule: schedule.state != "cancelled" and (schedule.date_from.year, schedule.date_from.month)
            == (2022, month)
        )
