from odoo import api, fields, models
from odoo.addons.iot_usage.models.iot_usage_calculator import UsageScope


class IotUsageCalculatorTestWizard(models.TransientModel):
    _name = "iot.usage.calculator.test.wizard"
    _description = "Test a Usage Calculator"

    calculator_id = fields.Many2one("iot.usage.calculator", required=True)
    device_id = fields.Many2one("iot_billing.device", required=True)
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)
    currency_id = fields.Many2one("res.currency", compute="_compute_currency_id")
    quantity = fields.Float(digits=(20, 6), compute="_compute_result")
    reading_count = fields.Integer(compute="_compute_result")
    amount = fields.Monetary(compute="_compute_result")

    @api.depends("calculator_id")
    def _compute_currency_id(self):
        # A rule shared by every company has no currency of its own: the user's company's.
        for wizard in self:
            wizard.currency_id = wizard.calculator_id.currency_id or self.env.company.currency_id

    @api.depends("calculator_id", "device_id", "date_from", "date_to")
    def _compute_result(self):
        for wizard in self:
            wizard.quantity, wizard.reading_count, wizard.amount = wizard._evaluate()

    def _evaluate(self):
        """Quantity, count and amount the rule gives for the device's readings (or events)
        measured in the period, invoiced or not, rejected ones excluded: the same
        measure and price as billing, invoicing nothing."""
        calculator = self.calculator_id
        if not (calculator and self.device_id and self.date_from and self.date_to):
            return 0.0, 0, 0.0
        scope = UsageScope(
            key=0, calculators=calculator, currency=self.currency_id, device_id=self.device_id.id,
            date_from=self.date_from, date_to=self.date_to, schedule_id=False,
            tz=self.device_id.contract_id.tz or "UTC",
        )
        measure = calculator._evaluate([scope])[0, calculator.id]
        return float(measure.quantity), measure.count, float(measure.amount)
