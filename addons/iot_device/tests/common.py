from odoo.tests import TransactionCase, new_test_user


class IotDeviceCommon(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.Device = cls.env["iot_billing.device"]
        cls.company = cls.env.company
        cls.device_type_meter = cls.env["iot_billing.device.type"].create(
            {"name": "Test meter", "code": "test_meter"}
        )
        cls.device_type_light = cls.env["iot_billing.device.type"].create(
            {"name": "Test streetlight", "code": "test_streetlight"}
        )
        cls.customer = cls.env["res.partner"].create(
            {"name": "Fleet Customer", "ref": "FLEET-CUST", "is_company": True}
        )
        cls.iot_manager = new_test_user(
            cls.env, login="iot_manager", groups="iot_device.group_iot_manager"
        )
        cls.iot_user = new_test_user(cls.env, login="iot_user", groups="iot_device.group_iot_user")
        cls.integration_user = new_test_user(
            cls.env,
            login="iot_integration",
            groups="base.group_portal,iot_device.group_iot_integration",
        )

    def _events(self, device, event_type=None):
        domain = [("device_id", "=", device.id)]
        if event_type:
            domain.append(("event_type", "=", event_type))
        return self.env["iot_billing.device.event"].search(domain)
