from odoo import fields, models


class IotUsageMetric(models.Model):
    _name = "iot.usage.metric"
    _description = "IoT Usage Metric"
    _order = "code"
    _rec_names_search = ["code", "name"]

    code = fields.Char(
        required=True, index=True, help="What device platforms send as 'metric' (e.g. kwh, messages)."
    )
    name = fields.Char(required=True, translate=True)
    uom_id = fields.Many2one("uom.uom", string="Unit of Measure")
    active = fields.Boolean(default=True)

    _sql_constraints = [("code_unique", "unique(code)", "A metric code must be unique.")]
