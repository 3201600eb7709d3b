"""No model of this product may reuse a name another Odoo IoT module defines.

Two modules defining the same ``_name`` merge into one broken model, so the
product could not be installed beside them. The names below were read from
OCA/iot (every branch, 11.0-18.0) and Odoo Enterprise's ``iot`` app and its
companions (IoT Box, quality and point-of-sale triggers).
"""

import os

from odoo.modules.module import get_module_path
from odoo.tests import TransactionCase, tagged

TAKEN_NAMES = {
    # Odoo Enterprise: iot, quality_iot, pos_iot, mrp_workorder_iot
    "iot.box", "iot.device", "iot.channel", "iot.keyboard.layout", "iot.trigger", "add.iot.box",
    # OCA/iot: iot_oca, iot_input_oca, iot_output_oca, iot_template_oca, iot_key_oca,
    # iot_amqp_oca, iot_option_oca, iot_control, iot_event and their older names
    "iot.amqp.host", "iot.communication.system", "iot.communication.system.action",
    "iot.device.action", "iot.device.configure", "iot.device.group", "iot.device.input",
    "iot.device.input.action", "iot.device.option", "iot.device.output", "iot.device.output.action",
    "iot.device.property", "iot.device.tag", "iot.key", "iot.key.action", "iot.key.mixin",
    "iot.key.wizard", "iot.lock", "iot.rule", "iot.system", "iot.system.action", "iot.template",
    "iot.template.input", "iot.template.key", "iot.template.output",
}
# Whole namespaces those modules grow into: nothing of ours may live under them.
TAKEN_PREFIXES = ("iot.device.", "iot.box.", "iot.key.", "iot.system.", "iot.template.")


@tagged("post_install", "-at_install")
class TestModelNames(TransactionCase):
    def test_no_model_name_taken_by_another_iot_module(self):
        addons_dir = os.path.dirname(get_module_path("iot_device"))
        ours = {
            module.name
            for module in self.env["ir.module.module"].search([("state", "=", "installed")])
            if os.path.dirname(get_module_path(module.name, display_warning=False) or "") == addons_dir
        }
        expected = {"iot_device", "iot_contract", "iot_usage", "iot_invoice_grouping", "iot_dunning"}
        self.assertTrue(expected <= ours, ours)
        defined = {
            name for name, model in self.env.registry.items() if model._original_module in ours
        }
        self.assertIn("iot_billing.device", defined)
        clashes = sorted(
            name for name in defined if name in TAKEN_NAMES or name.startswith(TAKEN_PREFIXES)
        )
        self.assertEqual(clashes, [], "model names another Odoo IoT module already defines")
