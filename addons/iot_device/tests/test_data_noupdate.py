"""Record rules and crons are created once and then belong to the administrator.

Odoo updates a module's records on every upgrade unless they are
``noupdate``: a rule an integrator tightened or a cron an administrator
rescheduled would silently come back to the shipped values.
"""

import os

from odoo.modules.module import get_module_path
from odoo.tests import TransactionCase, tagged


@tagged("post_install", "-at_install")
class TestDataNoupdate(TransactionCase):
    def test_record_rules_and_crons_are_noupdate(self):
        addons_dir = os.path.dirname(get_module_path("iot_device"))
        ours = [
            module.name
            for module in self.env["ir.module.module"].search([("state", "=", "installed")])
            if os.path.dirname(get_module_path(module.name, display_warning=False) or "") == addons_dir
        ]
        records = self.env["ir.model.data"].search(
            [("module", "in", ours), ("model", "in", ("ir.rule", "ir.cron"))]
        )
        # The four modules ship 11 rules and 3 crons today; a new one is checked the same way.
        self.assertGreaterEqual(len(records.filtered(lambda data: data.model == "ir.rule")), 11)
        self.assertGreaterEqual(len(records.filtered(lambda data: data.model == "ir.cron")), 3)
        updatable = records.filtered(lambda data: not data.noupdate)
        self.assertFalse(updatable, "not noupdate: %s" % ", ".join(updatable.mapped("complete_name")))
