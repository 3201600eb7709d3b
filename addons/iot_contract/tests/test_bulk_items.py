from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.iot_contract_item import BULK_COMPANY_CHECK
from .common import IotContractCommon


@tagged("post_install", "-at_install")
class TestBulkItems(IotContractCommon):
    """Large batches of items take set-based paths; they must keep the same rules."""

    def _devices(self, count, company=None):
        return self.Device.create([
            {"name": "BULK-%04d" % n, "identifier": "BULK-%04d" % n, "state": "active",
             **({"company_id": company.id} if company else {})}
            for n in range(count)
        ])

    def test_large_batch_refuses_a_device_of_another_company(self):
        other = self.env["res.company"].create({"name": "Bulk Co B"})
        devices = self._devices(BULK_COMPANY_CHECK) | self._devices(1, other).with_company(other)
        vals = [{"contract_id": self.contract.id, "device_id": device.id, "product_id": self.plan.id,
                 "date_start": "2022-04-01"} for device in devices]
        with self.assertRaisesRegex(UserError, "compan"), self.cr.savepoint():
            self.Item.create(vals)
        items = self.Item.create(vals[:-1])
        self.assertEqual(len(items), BULK_COMPANY_CHECK)

    def test_large_batch_shares_periods_but_keeps_each_items_own(self):
        devices = self._devices(BULK_COMPANY_CHECK + 1)
        vals = [{"contract_id": self.contract.id, "device_id": device.id, "product_id": self.plan.id,
                 "date_start": "2022-04-01"} for device in devices]
        vals[0].update(date_start="2022-04-16", price_unit=30.0)
        items = self.Item.create(vals)
        self.assertEqual(len(items[1].schedule_ids), 12)
        self.assertEqual(items[1].schedule_ids.sorted("date_from")[0].fixed_amount, 15.0)
        first = items[0].schedule_ids.sorted("date_from")
        self.assertEqual((str(first[0].date_from), first[0].fixed_amount), ("2022-04-16", 15.0))  # 15/30 of 30.00
        self.assertEqual(len(first), 13, "a mid-month start ends mid-month twelve months later")
