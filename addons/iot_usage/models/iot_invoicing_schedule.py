from odoo import api, fields, models


class IotInvoicingSchedule(models.Model):
    """The billing engine's hooks, filled with usage: the work is done by the usage buckets
    (``iot.usage.bucket``), the rules (``iot.usage.calculator``) and the valuations."""

    _inherit = "iot.invoicing.schedule"

    bucket_ids = fields.One2many("iot.usage.bucket", "schedule_id", string="Usage")
    valuation_ids = fields.One2many("iot.usage.valuation", "schedule_id", string="Usage valuation")

    @api.depends("valuation_ids.move_line_id")
    def _compute_invoice_line_ids(self):
        super()._compute_invoice_line_ids()
        for schedule in self:
            schedule.invoice_line_ids |= schedule.valuation_ids.move_line_id

    def _iot_value_usage(self, run):
        result = super()._iot_value_usage(run)
        # A schedule of the fee alone (fees in advance) bills no usage: its period's usage
        # has a schedule of its own, due at the period's end.
        planned = self.filtered(lambda schedule: schedule.state == "planned" and schedule.part != "fee")
        if planned:
            self.env["iot.usage.bucket"]._assign_to_schedules(planned)
            self.env["iot.usage.valuation"]._value_schedules(planned)
        return result

    def _iot_invoice_line_parts(self):
        return super()._iot_invoice_line_parts() + self.env["iot.usage.valuation"]._invoice_line_parts(self)

    def _iot_link_invoice_lines(self, line_parts):
        super()._iot_link_invoice_lines(line_parts)
        self.env["iot.usage.valuation"]._link_move_lines(line_parts)

    def _iot_state_changed(self, state):
        result = super()._iot_state_changed(state)
        Bucket = self.env["iot.usage.bucket"]
        if state == "invoiced":
            Bucket._mark_invoiced(self)
        elif state == "cancelled":
            # The usage of a cancelled period waits for another schedule (or rejection).
            Bucket._reopen_for_schedules(self, ("to_value", "valued"))
        elif state == "planned":
            # A freed period (its invoice cancelled, deleted or fully credited, or its contract
            # failed while billed in steps) is billed again: its usage is valued anew and its
            # valuations no longer point at the old lines.
            Bucket._release_for_schedules(self)
        return result
