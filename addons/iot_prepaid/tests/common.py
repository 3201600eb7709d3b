from decimal import Decimal

from odoo import Command
from odoo.addons.iot_usage.tests.common import IotUsageCommon


class IotPrepaidCommon(IotUsageCommon):
    """A prepaid plan (10.00 a month, energy at 0.50 a kWh) and the 'Prepaid Contract' with
    devices U-1 and U-2 active from 1 April 2022, and its wallet (empty)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Wallet = cls.env["iot.wallet"]
        cls.Grant = cls.env["iot.wallet.grant"]
        cls.Entry = cls.env["iot.wallet.entry"]
        cls.prepaid_plan = cls._create_plan("Prepaid Energy Plan", "PREPAID", 10.0, iot_prepaid=True)
        cls.energy = cls.env["iot.usage.calculator"].create({
            "name": "Energy", "product_tmpl_id": cls.prepaid_plan.product_tmpl_id.id,
            "metric_id": cls.metric_kwh.id, "pricing": "per_unit", "unit_price": 0.5,
        })
        cls.prepaid_contract = cls._start_contract("Prepaid Contract", "PREPAID-1")
        cls._activate_devices(cls.prepaid_contract, cls.prepaid_plan, ["U-1", "U-2"])
        cls.wallet = cls.Wallet._for_contracts(cls.prepaid_contract)
        cls.item_1 = cls.device_1.contract_item_ids
        cls.april_1 = cls._schedule(cls.item_1, "2022-04-01")

    @classmethod
    def _start_contract(cls, name, reference, **extra):
        contract = cls.env["iot.contract"].create(
            {"name": name, "reference": reference, "partner_id": cls.customer.id, **extra}
        )
        if "invoice_grouping" in contract._fields:
            contract.invoice_grouping = "none"  # one line per part, as these tests read them
        contract.action_start()
        return contract

    @classmethod
    def _activate_devices(cls, contract, plan, identifiers, date_start="2022-04-01"):
        result = cls.env["iot_billing.device"].api_activate([
            {"identifier": identifier, "contract": contract.reference, "plan": plan.default_code,
             "date_start": date_start}
            for identifier in identifiers
        ])
        assert all("error" not in entry for entry in result), result

    @classmethod
    def _schedule(cls, item, date_from):
        return item.schedule_ids.filtered(lambda s: str(s.date_from) == date_from and s.part != "fee")

    def _grant(self, amount, wallet=None, **extra):
        return self.Grant.with_user(self.billing_user).create(
            {"wallet_id": (wallet or self.wallet).id, "amount": amount, "kind": "promotion", **extra}
        )

    def _ingest(self, readings):
        result = self.api.api_ingest(readings)
        self.assertFalse(result["rejected"], result)
        return result

    def _debited(self, schedule, calculator=None):
        """What the ledger debited for a period (and rule), as a Decimal."""
        domain = [("schedule_id", "=", schedule.id), ("kind", "=", "debit")]
        if calculator:
            domain.append(("calculator_id", "=", calculator.id))
        return -sum((Decimal(str(entry.amount)) for entry in self.Entry.search(domain)), Decimal(0))

    def assertLedgerConsistent(self, wallet=None):
        """The balance is the sum of the balance entries; each grant's remainder is its entries'."""
        wallet = wallet or self.wallet
        wallet.invalidate_recordset()
        entries = self.Entry.search([("wallet_id", "=", wallet.id)])
        balance_entries = entries.filtered(lambda e: e.kind in ("grant", "debit", "expiry", "adjustment"))
        self.assertEqual(
            wallet.currency_id.compare_amounts(wallet.balance, sum(balance_entries.mapped("amount"))), 0,
            "balance %s != sum of entries %s" % (wallet.balance, sum(balance_entries.mapped("amount"))),
        )
        for grant in wallet.grant_ids:
            mine = balance_entries.filtered(lambda e, grant=grant: e.grant_id == grant)
            self.assertEqual(wallet.currency_id.compare_amounts(grant.remaining, sum(mine.mapped("amount"))), 0,
                             grant.name)
            if grant.state == "expired":
                self.assertTrue(wallet.currency_id.is_zero(grant.remaining), "an expired grant holds nothing")
        # All credit is held by grants: what no grant holds is only usage still owed (<= 0).
        unheld = sum(balance_entries.filtered(lambda e: not e.grant_id).mapped("amount"))
        self.assertLessEqual(wallet.currency_id.compare_amounts(unheld, 0), 0, "credit held by no grant: %s" % unheld)
        held = sum(wallet.grant_ids.filtered(lambda g: g.state in ("active", "exhausted")).mapped("remaining"))
        self.assertEqual(wallet.currency_id.compare_amounts(wallet.balance, held + unheld), 0,
                         "balance %s != active grants' remainders %s + usage owed %s" % (wallet.balance, held, unheld))


def tiers(*rows):
    return [Command.create({"from_quantity": start, "unit_price": price, "flat_fee": fee})
            for start, price, fee in rows]
