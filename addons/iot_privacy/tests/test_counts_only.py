from odoo.addons.iot_contract.tests.common import IotContractCommon
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

# Every model that holds a device's identity, its readings, events or commands (those of the
# optional modules where installed): the counts-only group is refused each of them.
DEVICE_DATA_MODELS = [
    "iot_billing.device",
    "iot_billing.device.event",
    "iot_billing.device.command",
    "iot.contract",
    "iot.contract.item",
    "iot.invoicing.schedule",
    "iot.billing.run.part",
    "iot.usage",
    "iot.usage.bucket",
    "iot.usage.reject",
    "iot.usage.valuation",
    "iot.invoice.detail.part",
    "iot.webhook.delivery",
    "iot.statistics.source",
    "iot_billing.device.user",
    "iot.contract.item.preset",
    "iot.wallet",
    "iot.wallet.entry",
]
# What the counts-only group may read besides its report: none of it names a device.
READABLE = {"iot.subscription.count.report"}


@tagged("post_install", "-at_install")
class TestCountsOnly(IotContractCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.counts_user = new_test_user(
            cls.env, login="iot_counts", groups="iot_privacy.group_iot_billing_counts,base.group_allow_export")
        cls.Report = cls.env["iot.subscription.count.report"]
        cls.devices = [cls._register("COUNT-%d" % n) for n in range(3)]

    @classmethod
    def _register(cls, identifier):
        cls.Device.with_user(cls.integration_user).api_register(
            [{"identifier": identifier, "name": "Camera " + identifier, "partner": cls.customer.id}])
        return cls.Device.search([("identifier", "=", identifier)])

    def _models_present(self):
        return [name for name in DEVICE_DATA_MODELS if name in self.env]

    def test_counts_and_totals_per_subscription_and_month(self):
        for device in self.devices[:2]:
            self._activate(device, date_start="2022-04-01")
        self._activate(self.devices[2], date_start="2022-05-10")
        self._run_billing("2022-05-01")
        self.env.flush_all()

        rows = self.Report.with_user(self.counts_user).search_read(
            [("contract_reference", "=", "IOT-FLEET-001")],
            ["id", "period_month", "device_count", "amount_total", "amount_invoiced", "product_id", "partner_id"],
        )
        by_month = {str(row["period_month"]): row for row in rows}
        schedules = self.Schedule.search([("contract_id", "=", self.contract.id), ("state", "!=", "cancelled")])
        for month in ("2022-04-01", "2022-05-01"):
            in_month = schedules.filtered(lambda s, m=month: str(s.date_from)[:7] == m[:7])
            self.assertEqual(by_month[month]["device_count"], len(in_month.device_id))
            self.assertAlmostEqual(by_month[month]["amount_total"], sum(in_month.mapped("amount_total")), places=2)
            invoiced = in_month.filtered(lambda s: s.state == "invoiced")
            self.assertAlmostEqual(by_month[month]["amount_invoiced"], sum(invoiced.mapped("amount_total")), places=2)
        self.assertEqual(by_month["2022-04-01"]["device_count"], 2)
        self.assertEqual(by_month["2022-05-01"]["device_count"], 3)
        self.assertGreater(by_month["2022-04-01"]["amount_invoiced"], 0, "April was billed by the May run")
        self.assertEqual(by_month["2022-04-01"]["partner_id"][0], self.customer.id)
        exported = self.Report.with_user(self.counts_user).browse(by_month["2022-04-01"]["id"]).export_data(
            ["contract_name", "device_count"])
        self.assertEqual(exported["datas"], [["IOT Fleet Contract", 2]])
        self.assertEqual(by_month["2022-04-01"]["product_id"][0], self.plan.id)

        # Grouped the way the pivot asks: the counts add up per month.
        groups = self.Report.with_user(self.counts_user)._read_group(
            [("contract_reference", "=", "IOT-FLEET-001"), ("period_month", "<", "2022-06-01")],
            ["period_month:month"], ["device_count:sum"])
        self.assertEqual({str(month): count for month, count in groups},
                         {"2022-04-01": 2, "2022-05-01": 3})

    def test_device_data_refused_everywhere(self):
        self._activate(self.devices[0], date_start="2022-04-01")
        self.env.flush_all()
        for name in self._models_present():
            Model = self.env[name].with_user(self.counts_user)
            record = self.env[name].search([], limit=1)
            with self.subTest(model=name, via="search"), self.assertRaises(AccessError):
                Model.search([])
            with self.subTest(model=name, via="search_count"), self.assertRaises(AccessError):
                Model.search_count([])
            with self.subTest(model=name, via="read_group"), self.assertRaises(AccessError):
                Model.read_group([], ["id:count"], [])
            with self.subTest(model=name, via="name_search"), self.assertRaises(AccessError):
                Model.name_search("")
            if record:
                with self.subTest(model=name, via="read"), self.assertRaises(AccessError):
                    Model.browse(record.id).read(["display_name"])
                with self.subTest(model=name, via="export"), self.assertRaises(AccessError):
                    Model.browse(record.id).export_data(["display_name"])

    def test_no_other_iot_model_readable(self):
        """Whatever IoT modules are installed, the counts-only user reads their report and nothing else
        of theirs: a new model without access rights for it is refused by default, one that grants it
        must be listed in READABLE on purpose."""
        modules = self.env["ir.module.module"].search(
            [("name", "=like", "iot\\_%"), ("state", "=", "installed")]).mapped("name")
        names = {
            self.env["ir.model"].browse(data.res_id).model
            for data in self.env["ir.model.data"].search([("module", "in", modules), ("model", "=", "ir.model")])
        }
        stored = [name for name in names if name in self.env and self.env[name]._original_module in modules
                  and not self.env[name]._abstract and not self.env[name]._transient]
        self.assertIn("iot_billing.device", stored)
        readable = set()
        for name in stored:
            try:
                self.env[name].with_user(self.counts_user).search([], limit=1)
            except AccessError:
                continue
            readable.add(name)
        self.assertEqual(readable, READABLE)

    def test_contract_link_only_for_device_readers(self):
        self._activate(self.devices[0], date_start="2022-04-01")
        self.env.flush_all()
        row = self.Report.search([("contract_reference", "=", "IOT-FLEET-001")], limit=1)
        self.assertTrue(row)
        self.assertNotIn("contract_id", self.Report.with_user(self.counts_user).fields_get())
        with self.assertRaises(AccessError):
            row.with_user(self.counts_user).read(["contract_id"])
        with self.assertRaises(AccessError):
            self.Report.with_user(self.counts_user).search([("contract_id", "=", self.contract.id)])
        self.assertEqual(row.with_user(self.billing_user).contract_id, self.contract)

    def test_menus_open_on_the_counts(self):
        menus = self.env["ir.ui.menu"].with_user(self.counts_user)._visible_menu_ids()
        self.assertIn(self.env.ref("iot_device.iot_menu_root").id, menus)
        self.assertIn(self.env.ref("iot_privacy.iot_subscription_count_report_menu").id, menus)
        self.assertNotIn(self.env.ref("iot_device.iot_device_menu").id, menus)
        self.assertNotIn(self.env.ref("iot_device.iot_device_event_menu").id, menus)

    def test_other_company_counts_invisible(self):
        self._activate(self.devices[0], date_start="2022-04-01")
        other = self.env["res.company"].create({"name": "Other Tenant"})
        self.env.flush_all()
        self.counts_user.write({"company_ids": [(6, 0, [other.id])], "company_id": other.id})
        self.assertFalse(self.Report.with_user(self.counts_user).search([]))
