from odoo import api, models
from odoo.tools import SQL


class AccountMove(models.Model):
    _inherit = "account.move"

    @api.model
    def _iot_detail_fixed_parts(self):
        """A bundle period billed on one line per option has one detail row per component, on the
        line that billed it (so that each line's rows add up to it), instead of one row of its
        whole fee on its first component's line."""
        return SQL(
            """SELECT base.schedule_id, base.part_id, base.line_id, base.kind, base.amount
                 FROM (%(base)s) base
                WHERE NOT EXISTS (SELECT 1 FROM iot_invoicing_schedule_component component
                                   WHERE component.schedule_id = base.schedule_id AND base.kind = 'fixed')
               UNION ALL
               SELECT component.schedule_id, component.id, line.id, 'fixed', component.amount::numeric
                 FROM line
                 JOIN iot_invoicing_schedule_component component ON component.move_line_id = line.id""",
            base=super()._iot_detail_fixed_parts(),
        )

    def _iot_free_periods(self):
        # The freed periods are billed again, on new lines: what they billed here no longer stands.
        # sudo: as the periods themselves, freed by an accountant.
        self.env["iot.invoicing.schedule.component"].sudo().search(
            [("move_line_id.move_id", "in", self.ids)]
        ).unlink()
        return super()._iot_free_periods()
