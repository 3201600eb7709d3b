from odoo.tests import TransactionCase, new_test_user


class IotUsageCommon(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.Usage = cls.env["iot.usage"]
        cls.metric_kwh = cls.env.ref("iot_usage.metric_kwh")
        cls.metric_messages = cls.env.ref("iot_usage.metric_messages")
        cls.integration_user = new_test_user(
            cls.env, login="usage_integration", groups="base.group_portal,iot_device.group_iot_integration"
        )
        cls.api = cls.Usage.with_user(cls.integration_user)
        cls.customer = cls.env["res.partner"].create({"name": "Usage Customer", "is_company": True})
        cls.env["iot_billing.device"].with_user(cls.integration_user).api_register(
            [{"identifier": "U-%d" % number, "partner": cls.customer.id} for number in range(1, 4)]
        )
        cls.device_1, cls.device_2, cls.device_3 = (
            cls.env["iot_billing.device"].search([("identifier", "=", "U-%d" % number)]) for number in range(1, 4)
        )

    def _reading(self, identifier="U-1", quantity="1", timestamp="2022-04-14T10:00:00Z", message_id=None,
                 metric="kwh", **extra):
        self._counter = getattr(self, "_counter", 0) + 1
        return dict(
            identifier=identifier, metric=metric, quantity=quantity, timestamp=timestamp,
            message_id=message_id or "msg-%d" % self._counter, **extra
        )
