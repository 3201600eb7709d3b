"""One PostgreSQL advisory lock per company shared by usage valuation and billing.

Both write the same invoicing schedules. Billing chunks take the company's lock
*shared* (several workers bill one run's chunks at once), valuation takes it
*exclusive*: neither meets rows the other holds, so a billing run never skips a
schedule because the valuation was updating it. Transaction-level locks: they
end with the chunk's commit, and with the connection if the process dies.
"""

# First key of the two-key advisory lock: "IoT billing" (any constant unique to this project).
LOCK_NAMESPACE = 70140


def try_lock_for_billing(cr, company_id):
    """True if this transaction may bill the company's schedules (no valuation holds them)."""
    cr.execute("SELECT pg_try_advisory_xact_lock_shared(%s, %s)", [LOCK_NAMESPACE, company_id])
    return cr.fetchone()[0]


def try_lock_for_valuation(cr, company_id):
    """True if this transaction may value the company's schedules (no billing chunk holds them)."""
    cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, company_id])
    return cr.fetchone()[0]
