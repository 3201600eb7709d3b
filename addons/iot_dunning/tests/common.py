from datetime import date

from freezegun import freeze_time

from odoo import Command
from odoo.addons.iot_contract.tests.common import IotContractCommon


class IotDunningCommon(IotContractCommon):
    """Three streetlights on the contract since 2022-04-01 (one flagged never block),
    the April invoice (3 x 15.00 + 10% = 49.50, due 2022-04-30), and the policy:
    reminder e-mail at +5 days, fee at +15, block at +30."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Line = cls.env["iot.dunning.line"]
        cls.Command = cls.env["iot_billing.device.command"]
        cls.fee_product = cls.env["product.product"].create(
            {
                "name": "Reminder fee",
                "default_code": "FEE",
                "type": "service",
                "list_price": 5.0,
                "taxes_id": [Command.set(cls.tax_10.ids)],
            }
        )
        cls.template = cls.env.ref("iot_dunning.iot_dunning_mail_template_reminder")
        cls.policy = cls.env["iot.dunning.policy"].create(
            {
                "name": "Test dunning",
                "level_ids": [
                    Command.create({"name": "Reminder", "days_after_due": 5, "mail_template_id": cls.template.id}),
                    Command.create({"name": "Fee", "days_after_due": 15, "fee_product_id": cls.fee_product.id}),
                    Command.create(
                        {"name": "Block", "days_after_due": 30, "block": True, "mail_template_id": cls.template.id}
                    ),
                ],
            }
        )
        cls.reminder, cls.fee_level, cls.block_level = cls.policy.level_ids.sorted("days_after_due")
        cls.company.iot_dunning_policy_id = cls.policy
        cls.customer.email = "fleet@example.com"
        with freeze_time("2022-04-01"):
            cls.light_1 = cls._new_active_device("SL-1")
            cls.light_2 = cls._new_active_device("SL-2")
            cls.emergency = cls._new_active_device("SL-EMERGENCY")
        cls.emergency.iot_never_block = True
        with freeze_time("2022-04-30"):
            result = cls.BillingRun.with_user(cls.billing_user).api_run("2022-04-30")
        cls.invoice = cls.env["account.move"].browse(result["invoice_ids"])

    @classmethod
    def _new_active_device(cls, identifier, contract=None, date_start="2022-04-01"):
        cls.Device.with_user(cls.integration_user).api_register(
            [{"identifier": identifier, "partner": cls.customer.id}]
        )
        result = cls.Device.with_user(cls.integration_user).api_activate(
            [
                {
                    "identifier": identifier,
                    "contract": (contract or cls.contract).reference,
                    "plan": cls.plan.default_code,
                    "date_start": date_start,
                }
            ]
        )[0]
        assert "error" not in result, result
        return cls.Device.search([("identifier", "=", identifier)])

    def _evaluate(self, day, contracts=None):
        with freeze_time(day):
            (contracts or self.contract)._iot_dunning_evaluate(date.fromisoformat(day))

    def _pay(self, invoice, amount, day, **extra):
        with freeze_time(day):
            wizard = (
                self.env["account.payment.register"]
                .with_context(active_model="account.move", active_ids=invoice.ids)
                .create({"payment_date": day, "amount": amount, **extra})
            )
            return wizard._create_payments()

    def _commands(self, devices, command):
        return self.Command.search([("device_id", "in", devices.ids), ("command", "=", command)])

    def _chatter(self, contract=None):
        return (contract or self.contract).message_ids
