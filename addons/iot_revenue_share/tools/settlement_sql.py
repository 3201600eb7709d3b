"""The settlement run's queries: set-based, one statement per step, never one per device."""

# Customer invoices' parts (fixed fee, usage, or the whole device-period for fixed
# amounts per device) that a rule shares and that no settlement has shared yet.
# A schedule takes the rules of its device if it has some, else its contract's,
# else its plan's. Cash basis: the invoice is paid and its last reconciliation is
# on or before the end of the period.
ORIGINAL_SHARES_SQL = """
    WITH invoice AS MATERIALIZED (
        SELECT move.id, move.date, paid.paid_date
          FROM account_move move
          LEFT JOIN LATERAL (
                SELECT max(partial.max_date) AS paid_date
                  FROM account_move_line line
                  JOIN account_account account ON account.id = line.account_id
                  JOIN account_partial_reconcile partial
                    ON partial.debit_move_id = line.id OR partial.credit_move_id = line.id
                 WHERE line.move_id = move.id AND account.account_type = 'asset_receivable'
          ) paid ON move.payment_state IN ('paid', 'in_payment')
         WHERE move.company_id = %(company_id)s
           AND move.move_type = 'out_invoice'
           AND move.state = 'posted'
           AND move.date <= %(date_to)s
           AND move.date >= %(horizon)s
           AND EXISTS (SELECT 1 FROM iot_invoicing_schedule schedule WHERE schedule.invoice_id = move.id)
    )
    SELECT schedule.invoice_id, schedule.id, part.kind, rule.id,
           CASE WHEN rule.beneficiary = 'device_owner' THEN device.iot_owner_partner_id ELSE rule.partner_id END,
           part.amount::text
      FROM invoice
      JOIN iot_invoicing_schedule schedule ON schedule.invoice_id = invoice.id
      JOIN product_product product ON product.id = schedule.product_id
      LEFT JOIN iot_billing_device device ON device.id = schedule.device_id
     CROSS JOIN LATERAL (
            SELECT ranked.*
              FROM (SELECT rule.id, rule.beneficiary, rule.partner_id, rule.share_type, rule.applies_to,
                           rule.basis, rule.date_start,
                           rank() OVER (ORDER BY CASE WHEN rule.device_id IS NOT NULL THEN 1
                                                      WHEN rule.contract_id IS NOT NULL THEN 2
                                                      ELSE 3 END) AS level
                      FROM iot_revenue_share_rule rule
                     WHERE rule.active AND rule.company_id = %(company_id)s
                       AND (rule.device_id = schedule.device_id
                            OR rule.contract_id = schedule.contract_id
                            OR rule.product_tmpl_id = product.product_tmpl_id)) ranked
             WHERE ranked.level = 1
     ) rule
     CROSS JOIN LATERAL (VALUES ('fixed', schedule.fixed_amount),
                                ('usage', schedule.usage_amount),
                                ('device', schedule.fixed_amount + schedule.usage_amount)) AS part(kind, amount)
     WHERE part.amount <> 0
       AND invoice.date >= rule.date_start
       AND (rule.basis = 'invoiced' OR invoice.paid_date <= %(date_to)s)
       AND CASE WHEN rule.share_type = 'fixed' THEN part.kind = 'device'
                ELSE part.kind <> 'device' AND rule.applies_to IN ('both', part.kind) END
       AND NOT EXISTS (
            SELECT 1 FROM iot_revenue_share_line done
             WHERE done.invoice_id = schedule.invoice_id AND done.schedule_id = schedule.id
               AND done.rule_id = rule.id AND done.kind = part.kind)
"""

# Company amount of invoices (Odoo's own conversion, line by line) against the sum
# of their schedules' amounts in the invoice currency.
INVOICE_TOTALS_SQL = """
    SELECT move.id, move.amount_untaxed_signed::text,
           (SELECT sum(schedule.fixed_amount + schedule.usage_amount)
              FROM iot_invoicing_schedule schedule WHERE schedule.invoice_id = move.id)::text
      FROM account_move move
     WHERE move.id = ANY(%(invoice_ids)s)
"""

INVOICE_PARTS_SQL = """
    SELECT invoice_id, id, fixed_amount::text, usage_amount::text
      FROM iot_invoicing_schedule
     WHERE invoice_id = ANY(%(invoice_ids)s)
     ORDER BY invoice_id, id
"""

# Posted credit notes of IoT invoices, with what the cash basis needs.
REFUNDS_SQL = """
    SELECT refund.id, refund.reversed_entry_id, refund.amount_untaxed_signed::text,
           origin.amount_untaxed_signed::text,
           refund.payment_state IN ('paid', 'in_payment') AND coalesce(paid.paid_date <= %(date_to)s, false)
      FROM account_move refund
      JOIN account_move origin ON origin.id = refund.reversed_entry_id
      LEFT JOIN LATERAL (
            SELECT max(partial.max_date) AS paid_date
              FROM account_move_line line
              JOIN account_partial_reconcile partial
                ON partial.debit_move_id = line.id OR partial.credit_move_id = line.id
              JOIN account_account account ON account.id = line.account_id
             WHERE line.move_id = refund.id AND account.account_type = 'asset_receivable'
      ) paid ON true
     WHERE refund.company_id = %(company_id)s
       AND refund.move_type = 'out_refund'
       AND refund.state = 'posted'
       AND refund.date <= %(date_to)s
       AND refund.date >= %(horizon)s
       -- shared already, or still billing its periods (shared in this run); a credit note in
       -- full frees the invoice's periods (iot_contract), its shares are found by their lines
       AND (EXISTS (SELECT 1 FROM iot_revenue_share_line line WHERE line.invoice_id = origin.id)
            OR EXISTS (SELECT 1 FROM iot_invoicing_schedule schedule WHERE schedule.invoice_id = origin.id))
"""

SHARED_LINES_SQL = """
    SELECT line.invoice_id, line.schedule_id, line.kind, line.rule_id, settlement.partner_id,
           line.base_amount::text, line.percent::text, line.share_amount::text
      FROM iot_revenue_share_line line
      JOIN iot_revenue_share_settlement settlement ON settlement.id = line.settlement_id
     WHERE line.invoice_id = ANY(%(invoice_ids)s)
"""

# COPY: the lines of a 100,000-device month are 200,000 rows; the client builds no SQL text.
COPY_LINES_SQL = """
    COPY iot_revenue_share_line (settlement_id, rule_id, kind, invoice_id, schedule_id, base_amount, percent,
                                 share_amount)
    FROM STDIN
"""
