"""The daily valuation cron on the committed-steps driver: it resumes from its cursor and
reports its progress."""

from unittest.mock import patch

from odoo import fields
from odoo.addons.iot_contract.tools import committed_steps
from odoo.addons.iot_usage.models import iot_contract as usage_contract
from odoo.tests import tagged

from .common import IotUsageCommon


@tagged("post_install", "-at_install")
class TestValuationCron(IotUsageCommon):
    def test_the_cron_resumes_from_its_cursor_and_reports_its_progress(self):
        Contract = self.env["iot.contract"]
        before = Contract.search([], order="id desc", limit=1).id
        contracts = Contract.create([
            {"name": "Valued %d" % number, "reference": "VALUED-%d" % number, "partner_id": self.customer.id}
            for number in range(3)
        ])
        contracts.action_start()
        Param = self.env["ir.config_parameter"].sudo()
        today = fields.Date.to_string(fields.Date.context_today(Contract))
        # Where an earlier call of today stopped: the contracts before these are done.
        Param.set_param(usage_contract.VALUATION_CURSOR, "%s:%d" % (today, before))
        valued, progress = [], []
        registry_class = type(Contract)
        current_schedules = registry_class._iot_current_schedules

        def record_valued(records):
            valued.extend(records.ids)
            return current_schedules(records)

        def record_progress(cron, done, remaining, deactivate=False):
            progress.append((done, remaining))

        with patch.object(registry_class, "_iot_current_schedules", record_valued), \
                patch.object(type(self.env["ir.cron"]), "_notify_progress", record_progress), \
                patch.object(usage_contract, "VALUATION_CHUNK_CONTRACTS", 1):
            # Odoo's limits allow two steps of this call, then the budget is spent.
            with patch.object(committed_steps.CronBudget, "fits", side_effect=[True, True, False]):
                Contract._cron_value_current_usage()
            self.assertEqual(valued, contracts[:2].ids)
            self.assertEqual(progress, [(2, 1)], "two steps done, one left")
            self.assertEqual(Param.get_param(usage_contract.VALUATION_CURSOR), "%s:%d" % (today, contracts[1].id))
            # The cron called again goes on from the cursor.
            Contract._cron_value_current_usage()
            self.assertEqual(valued, contracts.ids, "each contract valued once, in order")
            self.assertEqual(progress[-1], (1, 0))
            self.assertEqual(Param.get_param(usage_contract.VALUATION_CURSOR), "%s:%d" % (today, contracts[2].id))
