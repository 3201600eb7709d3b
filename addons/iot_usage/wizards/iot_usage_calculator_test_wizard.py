from datetime import timedelta
from decimal import Decimal

from odoo import api, fields, models


class IotUsageCalculatorTestWizard(models.TransientModel):
    _name = "iot.usage.calculator.test.wizard"
    _description = "Test a Usage Data Calculator"

    calculator_id = fields.Many2one("iot.usage.calculator", required=True)
    device_id = fields.Many2one("iot_billing.device", required=True)
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)
    currency_id = fields.Many2one(related="calculator_id.currency_id")
    quantity = fields.Float(digits=(20, 6), compute="_compute_result")
    reading_count = fields.Integer(compute="_compute_result")
    amount = fields.Monetary(compute="_compute_result")

    @api.depends("calculator_id", "device_id", "date_from", "date_to")
    def _compute_result(self):
        for wizard in self:
            wizard.quantity, wizard.reading_count, wizard.amount = wizard._evaluate()

    def _evaluate(self):
        """Quantity and amount the rule gives for the readings in the period, invoicing nothing."""
        calculator = self.calculator_id
        if not (calculator and self.device_id and self.date_from and self.date_to):
            return 0.0, 0, 0.0
        start, stop = self.date_from, self.date_to + timedelta(days=1)
        cr = self.env.cr
        if calculator.source == "event":
            self.env["iot_billing.device.event"].flush_model()
            cr.execute(
                "SELECT count(*), count(*) FROM iot_billing_device_event WHERE device_id = %s AND event_type = %s"
                " AND date >= %s AND date < %s",
                (self.device_id.id, calculator.event_type, start, stop),
            )
            quantity, count = cr.fetchone()
        else:
            self.env["iot.usage"].flush_model()
            aggregate = {
                "sum": "sum(quantity)",
                "count": "count(*)",
                "max": "max(quantity)",
                "avg": "avg(quantity)",
                "last": "(array_agg(quantity ORDER BY timestamp DESC, id DESC))[1]",
                "count_unique": "count(DISTINCT payload ->> %(key)s)",
            }[calculator.aggregation]
            cr.execute(
                "SELECT " + aggregate + ", count(*), "  # noqa: S608 - aggregate from a fixed map
                "sum(round(quantity * %(price)s / %(step)s) * %(step)s) FROM iot_usage"
                " WHERE device_id = %(device)s AND metric_id = %(metric)s AND state != 'rejected'"
                " AND timestamp >= %(start)s AND timestamp < %(stop)s",
                {
                    "key": calculator.payload_key, "device": self.device_id.id,
                    "metric": calculator.metric_id.id, "start": start, "stop": stop,
                    "price": Decimal(repr(calculator.unit_price)),
                    "step": Decimal(repr(calculator.currency_id.rounding or 0.01)),
                },
            )
            quantity, count, reading_amount = cr.fetchone()
            if calculator.rounding != "reading":
                reading_amount = None
        amount = calculator._price(
            quantity or 0, calculator.currency_id,
            reading_amounts=None if reading_amount is None else [reading_amount],
        )
        return float(quantity or 0), count, float(amount)
