from decimal import Decimal

from odoo.tests import TransactionCase, freeze_time


class IotGroupingCommon(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=True))
        cls.customer = cls.env["res.partner"].create({"name": "Grouping Customer", "is_company": True})
        cls.tax = cls.env["account.tax"].create(
            {"name": "IoT VAT 21%", "amount": 21, "amount_type": "percent", "type_tax_use": "sale"}
        )
        cls.plan = cls.env["product.product"].create(
            {"name": "Premium Fleet Subscription", "type": "service", "default_code": "GRP-PREMIUM",
             "list_price": 9.99, "iot_is_plan": True, "iot_duration_months": 2,
             "taxes_id": [(6, 0, cls.tax.ids)]}
        )
        cls.metric = cls.env.ref("iot_usage.metric_kwh")
        cls.energy = cls.env["iot.usage.calculator"].create(
            {"name": "Energy", "product_tmpl_id": cls.plan.product_tmpl_id.id, "metric_id": cls.metric.id,
             "pricing": "per_unit", "unit_price": 0.00005}
        )
        cls.type_light = cls.env["iot_billing.device.type"].create({"name": "Light", "code": "grp_light"})
        cls.type_meter = cls.env["iot_billing.device.type"].create({"name": "Meter", "code": "grp_meter"})
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
            {"identifier": identifier, "device_type": "grp_light" if n % 2 else "grp_meter"}
            for n, identifier in enumerate(identifiers)
        ])
        result = Device.api_activate([
            {"identifier": identifier, "contract": reference, "plan": "GRP-PREMIUM", "date_start": date_start}
            for identifier in identifiers
        ])
        errors = [entry for entry in result if "error" in entry]
        assert not errors, errors[:3]

    def _run(self, date):
        with freeze_time(date):
            result = self.env["iot.billing.run"].api_run(date)
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
