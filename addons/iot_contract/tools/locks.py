"""The project's PostgreSQL locks: advisory-lock namespaces, and claiming rows no one else holds.

Every advisory lock of the IoT modules is a two-key transaction lock ``(namespace, key)``
whose namespace is listed here, so that no two features ever share a key by accident.
Transaction-level locks end with the commit of the chunk or step that took them, and with
the connection if the process dies.
"""

import enum

from odoo.tools import SQL


class LockNamespace(enum.IntEnum):
    """First key of each advisory lock; the second is the company, day, ... it protects."""

    # Usage valuation (exclusive) and billing (shared) of one company's schedules (key: company).
    BILLING = 70140
    # Creating one day's raw usage partition (key: the day's ordinal).
    USAGE_PARTITION = 0x10717
    # Settlement runs of one company (key: company), iot_revenue_share.
    SETTLEMENT = 0x10755A7E
    # Claiming the contracts billed on one collective invoice (key: the payer), iot_organization.
    COLLECTIVE_INVOICE = 0xC011EC7


# Kept for the code and tests that name the billing namespace by its former name.
LOCK_NAMESPACE = LockNamespace.BILLING


def try_advisory_lock(cr, namespace, key, shared=False):
    """True if this transaction now holds the advisory lock ``(namespace, key)``; never waits."""
    function = "pg_try_advisory_xact_lock_shared" if shared else "pg_try_advisory_xact_lock"
    cr.execute(SQL("SELECT %s(%s, %s)", SQL.identifier(function), int(namespace), key))
    return cr.fetchone()[0]


def advisory_lock(cr, namespace, key):
    """Wait for, then hold, the exclusive advisory lock ``(namespace, key)``."""
    cr.execute(SQL("SELECT pg_advisory_xact_lock(%s, %s)", int(namespace), key))


def try_lock_for_billing(cr, company_id):
    """True if this transaction may bill the company's schedules (no valuation holds them).

    Billing chunks take the company's lock *shared* (several workers bill one run's chunks
    at once), valuation takes it *exclusive*: neither meets rows the other holds, so a billing
    run never skips a schedule because the valuation was updating it.
    """
    return try_advisory_lock(cr, LockNamespace.BILLING, company_id, shared=True)


def try_lock_for_valuation(cr, company_id):
    """True if this transaction may value the company's schedules (no billing chunk holds them)."""
    return try_advisory_lock(cr, LockNamespace.BILLING, company_id)


class RowLock(enum.StrEnum):
    """Row-lock strengths of ``claim_rows`` (PostgreSQL's ``FOR ...`` clauses)."""

    # Alone: no other transaction may claim the row, shared or not.
    EXCLUSIVE = "NO KEY UPDATE"
    # Together: several transactions hold it at once, none while one holds it alone.
    SHARED = "SHARE"
    # Alone, for a row this transaction changes or deletes.
    UPDATE = "UPDATE"


def claim_rows(cr, table, ids, limit=None, lock=RowLock.EXCLUSIVE, where=None, order="id"):
    """Ids of up to ``limit`` rows of ``table`` among ``ids`` that no other transaction holds,
    now locked by this one (``SKIP LOCKED``: held rows are left out, never waited for).

    ``where``: an extra ``SQL`` condition. Under REPEATABLE READ, a row changed by a transaction
    committed since this one began raises a serialization failure: the caller treats it as a
    concurrency error (``committed_steps.is_concurrency_error``) and looks again.
    """
    query = SQL(
        "SELECT id FROM %s WHERE id = ANY(%s)%s ORDER BY %s%s FOR %s SKIP LOCKED",
        SQL.identifier(table),
        list(ids),
        SQL(" AND %s", where) if where else SQL(),
        SQL(order),
        SQL(" LIMIT %s", limit) if limit is not None else SQL(),
        SQL(RowLock(lock).value),
    )
    cr.execute(query, log_exceptions=False)
    return [row[0] for row in cr.fetchall()]
