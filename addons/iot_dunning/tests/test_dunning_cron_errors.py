from unittest.mock import patch

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import IotDunningCommon


@tagged("post_install", "-at_install")
class TestDunningCronErrors(IotDunningCommon):
    """What the daily cron records when a contract's evaluation raises."""

    def _evaluate_raising(self, raise_once):
        """Patch the evaluation to run ``raise_once(env)`` on its first call only."""
        Contract = type(self.env["iot.contract"])
        original = Contract._iot_dunning_evaluate
        calls = []

        def evaluate(contracts, today):
            calls.append(contracts.ids)
            if len(calls) == 1:
                raise_once(contracts.env)
            return original(contracts, today)

        return patch.object(Contract, "_iot_dunning_evaluate", evaluate), calls

    def test_concurrency_error_is_retried_not_recorded(self):
        # PostgreSQL raises a serialization failure (SQLSTATE 40001, as when a payment committed
        # the same rows meanwhile): no failure of the contract, it stays due and is evaluated again.
        def serialization_failure(env):
            env.cr.execute(
                "DO $$ BEGIN RAISE EXCEPTION 'could not serialize access due to concurrent update' "
                "USING ERRCODE = 'serialization_failure'; END $$"
            )

        patcher, calls = self._evaluate_raising(serialization_failure)
        with patcher, freeze_time("2022-06-10"):
            self.env["iot.contract"]._cron_iot_dunning()
        self.assertEqual(calls, [self.contract.ids, self.contract.ids], "evaluated again in the same call")
        self.assertEqual(self.contract.iot_dunning_level_id, self.block_level)
        self.assertEqual((self.light_1.state, self.light_1.iot_suspension_reason), ("suspended", "unpaid"))
        self.assertEqual(str(self.contract.iot_dunning_evaluated_on), "2022-06-10")

    def test_real_failure_is_recorded_and_not_retried_today(self):
        def failure(env):
            raise UserError("broken contract")

        patcher, calls = self._evaluate_raising(failure)
        with patcher, freeze_time("2022-06-10"), self.assertLogs("odoo.addons.iot_dunning", "ERROR"):
            self.env["iot.contract"]._cron_iot_dunning()
            self.env["iot.contract"]._cron_iot_dunning()
        self.assertEqual(calls, [self.contract.ids], "looked at again tomorrow, not in a loop")
        self.assertEqual(str(self.contract.iot_dunning_evaluated_on), "2022-06-10")
        self.assertFalse(self.contract.iot_dunning_line_ids)
        self.assertEqual(self.light_1.state, "active")
