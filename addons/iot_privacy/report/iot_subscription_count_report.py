from odoo import fields, models, tools
from odoo.tools import SQL


class IotSubscriptionCountReport(models.Model):
    """Per subscription (contract), plan and month: how many devices were billed and for how much.

    What the *Billing (counts only)* group reads instead of the devices: the view groups the
    invoicing schedules in SQL, so no device id, name, reading or event reaches its users.
    """

    _name = "iot.subscription.count.report"
    _description = "IoT Subscription Counts"
    _auto = False
    _rec_name = "contract_name"
    _order = "period_month desc, contract_name, product_id"

    company_id = fields.Many2one("res.company", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    # The contract opens the items and devices: only for the groups that read them.
    contract_id = fields.Many2one("iot.contract", string="Contract", readonly=True, groups="iot_device.group_iot_user")
    contract_name = fields.Char(string="Subscription", readonly=True)
    contract_reference = fields.Char(string="Reference", readonly=True)
    product_id = fields.Many2one("product.product", string="Plan", readonly=True)
    period_month = fields.Date(string="Month", readonly=True, help="First day of the month the periods start in.")
    device_count = fields.Integer(
        string="Devices",
        readonly=True,
        help="Devices with a period of this plan starting in the month. A device whose plan changed in the "
        "month counts under each plan.",
    )
    currency_id = fields.Many2one("res.currency", readonly=True)
    fixed_amount = fields.Monetary(string="Fixed Fees", readonly=True)
    usage_amount = fields.Monetary(string="Usage", readonly=True, help="Usage valued so far (0 until valued).")
    amount_total = fields.Monetary(string="Total", readonly=True)
    amount_invoiced = fields.Monetary(string="Invoiced", readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(SQL(
            """CREATE OR REPLACE VIEW %s AS (
                SELECT min(schedule.id) AS id,
                       schedule.company_id,
                       contract.partner_id,
                       contract.id AS contract_id,
                       contract.name AS contract_name,
                       contract.reference AS contract_reference,
                       schedule.product_id,
                       date_trunc('month', schedule.date_from)::date AS period_month,
                       count(DISTINCT schedule.device_id) AS device_count,
                       schedule.currency_id,
                       sum(schedule.fixed_amount) AS fixed_amount,
                       sum(schedule.usage_amount) AS usage_amount,
                       sum(schedule.amount_total) AS amount_total,
                       coalesce(sum(schedule.amount_total) FILTER (WHERE schedule.state = 'invoiced'), 0)
                           AS amount_invoiced
                  FROM iot_invoicing_schedule schedule
                  JOIN iot_contract contract ON contract.id = schedule.contract_id
                 WHERE schedule.state != 'cancelled'
                 GROUP BY schedule.company_id, contract.id, schedule.product_id,
                          date_trunc('month', schedule.date_from), schedule.currency_id
            )""",
            SQL.identifier(self._table),
        ))
