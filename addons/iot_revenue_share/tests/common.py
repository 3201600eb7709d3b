import csv
import io
from decimal import ROUND_HALF_UP, Decimal

from odoo import Command, fields
from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.tests import freeze_time


class RevenueShareCommon(IotContractCommon):
    """The seed's smart city: lamps on 0.10 a day (3.00 for April) + 0.00005 per kWh, 10 % VAT."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Settlement = cls.env["iot.revenue.share.settlement"]
        cls.Rule = cls.env["iot.revenue.share.rule"]
        cls.streetlight_plan = cls._create_plan("Smart Streetlight", "SMART-LAMP", 3.0, cls.tax_10)
        cls.energy = cls.env["iot.usage.calculator"].create(
            {"name": "Energy", "product_tmpl_id": cls.streetlight_plan.product_tmpl_id.id,
             "metric_id": cls.env.ref("iot_usage.metric_kwh").id, "pricing": "per_unit", "unit_price": 0.00005}
        )
        cls.vendor = cls.env["res.partner"].create(
            {"name": "LumenWorks", "ref": "LUMEN", "is_company": True,
             "property_supplier_payment_term_id": cls.env.ref("account.account_payment_term_30days").id}
        )
        cls.installer = cls.env["res.partner"].create({"name": "Pole Installers", "is_company": True})
        cls.contract.action_start()

    @classmethod
    def _fleet(cls, count, prefix="LAMP", contract=None, plan=None, owner=None, kwh=None):
        """``count`` lamps activated on 1 April 2022, each with an April reading (kWh vary per lamp)."""
        contract = contract or cls.contract
        identifiers = ["%s-%04d" % (prefix, number) for number in range(count)]
        Device = cls.env["iot_billing.device"].with_user(cls.integration_user)
        Device.api_register([{"identifier": identifier, "partner": contract.partner_id.id}
                             for identifier in identifiers])
        result = Device.api_activate([
            {"identifier": identifier, "contract": contract.reference,
             "plan": (plan or cls.streetlight_plan).default_code, "date_start": "2022-04-01"}
            for identifier in identifiers
        ])
        assert all("error" not in entry for entry in result), result
        cls.env["iot.usage"].with_user(cls.integration_user).api_ingest([
            {"identifier": identifier, "metric": "kwh",
             "quantity": kwh or "%d.%03d" % (4000 + 37 * number, (number * 389) % 1000),
             "timestamp": "2022-04-15T12:00:00Z", "message_id": "%s-april" % identifier}
            for number, identifier in enumerate(identifiers)
        ])
        devices = cls.env["iot_billing.device"].search([("identifier", "in", identifiers)])
        if owner:
            devices.iot_owner_partner_id = owner
        return devices

    def _bill(self, date, company=None):
        with freeze_time(date):
            result = self._run_billing(date, company=company)
        self.assertFalse(result["errors"], result["errors"])
        return self.env["account.move"].browse(result["invoice_ids"])

    def _settle(self, period, company=None, mode=None):
        """Settle through the wizard, as an accountant of the Billing group."""
        env = self.env(user=self.billing_user, context=dict(
            self.env.context, allowed_company_ids=(company or self.company).ids))
        wizard = env["iot.revenue.share.settle.wizard"].create(
            {"period": period, **({"mode": mode} if mode else {})}
        )
        action = wizard.action_settle()
        return self.Settlement.browse(action["domain"][0][2])

    def _percent_of(self, amount, percent, currency=None):
        """``percent`` % of ``amount``, rounded once, half up, to the currency."""
        digits = (currency or self.company.currency_id).decimal_places
        exact = Decimal(repr(amount)) * Decimal(repr(percent)) / 100
        return float(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))

    def _percent_rule(self, percent, partner=None, **scope):
        vals = {"name": "Share %s %%" % percent, "percent": percent, "date_start": "2022-01-01"}
        if partner:
            vals["partner_id"] = partner.id
        else:
            vals["beneficiary"] = "device_owner"
        if not scope:
            scope = {"product_tmpl_id": self.streetlight_plan.product_tmpl_id.id}
        return self.Rule.create({**vals, **scope})

    def _credit_note(self, invoice, date):
        reversal = invoice._reverse_moves([{"date": fields.Date.to_date(date), "invoice_date": date}])
        reversal.action_post()
        return reversal

    def _pay(self, move, date):
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=move.ids
        ).create({"payment_date": date})._create_payments()

    def _detail_total(self, settlement):
        """The shares of the settlement's detail file (CSV), added up from its rows."""
        content = list(csv.reader(io.StringIO(settlement._iot_detail_file("csv")[2].decode("utf-8-sig"))))
        rows = content[1:-1]
        return sum((Decimal(row[10]) for row in rows), Decimal(0)), len(rows), content[-1]

    def _manual_bill(self, settlement):
        """The same bill keyed in by hand: Odoo's own taxes and totals for the same product and prices."""
        return self.env["account.move"].create({
            "move_type": settlement.move_id.move_type,
            "partner_id": settlement.partner_id.id,
            "invoice_date": settlement.date_to,
            "invoice_line_ids": [
                Command.create({"product_id": line.product_id.id, "quantity": line.quantity,
                                "price_unit": line.price_unit})
                for line in settlement.move_id.invoice_line_ids
            ],
        })
