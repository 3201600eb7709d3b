from odoo import fields
from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import freeze_time


class IotUsageCommon(IotContractCommon):
    """The contract test base, plus the usage metrics and three registered devices U-1..U-3
    of the customer (pending, on no contract)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Usage = cls.env["iot.usage"]
        cls.Reject = cls.env["iot.usage.reject"]
        cls.metric_kwh = cls.env.ref("iot_usage.metric_kwh")
        cls.metric_messages = cls.env.ref("iot_usage.metric_messages")
        cls.api = cls.Usage.with_user(cls.integration_user)
        cls.Device.with_user(cls.integration_user).api_register(
            [{"identifier": "U-%d" % number, "partner": cls.customer.id} for number in range(1, 4)]
        )
        cls.device_1, cls.device_2, cls.device_3 = (
            cls.Device.search([("identifier", "=", "U-%d" % number)]) for number in range(1, 4)
        )

    def _reading(self, identifier="U-1", quantity="1", timestamp="2022-04-14T10:00:00Z", message_id=None,
                 metric="kwh", **extra):
        self._counter = getattr(self, "_counter", 0) + 1
        return dict(
            identifier=identifier, metric=metric, quantity=quantity, timestamp=timestamp,
            message_id=message_id or "msg-%d" % self._counter, **extra
        )

    def _bucket_at(self, timestamp, device=None, metric=None):
        """The usage bucket(s) holding a reading of ``device`` (U-1) measured at ``timestamp``."""
        moment = fields.Datetime.to_datetime(timestamp.replace("T", " ").rstrip("Z"))
        return self.env["iot.usage.bucket"].search([
            ("device_id", "=", (device or self.device_1).id), ("metric_id", "=", (metric or self.metric_kwh).id),
            ("bucket_start", "<=", moment), ("bucket_stop", ">", moment),
        ])

    def _run(self, date):
        """A billing run on ``date`` by the Billing user, as the accountant would start it."""
        with freeze_time(date):
            return self._run_billing(date)
