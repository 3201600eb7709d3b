from decimal import Decimal

from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import freeze_time


class IotGroupingCommon(IotContractCommon):
    """The contract test base, plus a 2-month plan at 9.99 (21% tax) with an energy rule,
    and two site tags; fleets are activated on contracts of the customer."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tax = cls.env["account.tax"].create(
            {"name": "IoT VAT 21%", "amount": 21, "amount_type": "percent", "type_tax_use": "sale"}
        )
        cls.plan = cls._create_plan("Premium Fleet Subscription", "GRP-PREMIUM", 9.99, cls.tax, iot_duration_months=2)
        cls.metric = cls.env.ref("iot_usage.metric_kwh")
        cls.energy = cls.env["iot.usage.calculator"].create(
            {"name": "Energy", "product_tmpl_id": cls.plan.product_tmpl_id.id, "metric_id": cls.metric.id,
             "pricing": "per_unit", "unit_price": 0.00005}
        )
        cls.tag_north = cls.env["iot_billing.device.tag"].create({"name": "North site"})
        cls.tag_south = cls.env["iot_billing.device.tag"].create({"name": "South site"})

    @classmethod
    def _fleet(cls, reference, count, policy, prefix, date_start="2022-04-01"):
        contract = cls.env["iot.contract"].create(
            {"name": reference, "reference": reference, "partner_id": cls.customer.id,
             "invoice_grouping": policy}
        )
        contract.action_start()
        cls._activate(reference, ["%s-%05d" % (prefix, number) for number in range(count)], date_start)
        return contract

    @classmethod
    def _activate(cls, reference, identifiers, date_start):
        Device = cls.env["iot_billing.device"]
        Device.api_register([
            {"identifier": identifier,
             "device_type": cls.device_type_light.code if n % 2 else cls.device_type_meter.code}
            for n, identifier in enumerate(identifiers)
        ])
        result = Device.api_activate([
            {"identifier": identifier, "contract": reference, "plan": "GRP-PREMIUM", "date_start": date_start}
            for identifier in identifiers
        ])
        errors = [entry for entry in result if "error" in entry]
        assert not errors, errors[:3]

    def _run(self, date):
        """A billing run on ``date`` by the Billing user; it must bill every contract."""
        with freeze_time(date):
            result = self._run_billing(date)
        self.assertFalse(result["errors"], result["errors"])
        return self.env["account.move"].browse(result["invoice_ids"])

    def _assert_exact(self, invoice):
        """Lines multiply out exactly and add up to their members, to the cent."""
        members = Decimal(0)
        for schedule in invoice.iot_schedule_ids:
            members += Decimal(repr(schedule.fixed_amount)) + Decimal(repr(schedule.usage_amount))
        for line in invoice.invoice_line_ids:
            self.assertEqual(
                invoice.currency_id.round(line.quantity * line.price_unit), line.price_subtotal, line.name
            )
        self.assertEqual(Decimal(repr(invoice.amount_untaxed)).quantize(Decimal("0.01")),
                         members.quantize(Decimal("0.01")))
        return members
