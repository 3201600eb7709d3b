"""Daily range partitions of the raw readings table (``iot_usage``) and of the keys of
readings kept without their row (``iot_usage_key``, companies that keep no raw readings).

PostgreSQL declarative partitioning: the parent table holds no rows, each UTC day
of ``timestamp`` has its own table ``iot_usage_pYYYYMMDD`` (``iot_usage_key_pYYYYMMDD``).
A day past the retention window goes away with ``DROP TABLE`` (no DELETE, no vacuum,
no bloat). Both tables always have the same days.

Plain functions, not a model: this is DDL machinery, the models call it.
"""

import datetime
from contextlib import closing

import psycopg2

from odoo.addons.iot_contract.tools import LockNamespace, advisory_lock
from odoo.sql_db import db_connect
from odoo.tools import SQL
from odoo.tools import sql as odoo_sql

PARTITIONED_TABLE = "iot_usage"
KEY_TABLE = "iot_usage_key"
PARTITIONED_TABLES = (PARTITIONED_TABLE, KEY_TABLE)
# A transaction creating a day's partition holds the advisory lock (USAGE_PARTITION, the
# day's ordinal) until it ends: two creators of one day queue up (iot_contract/tools/locks.py).
# How long a partition created in its own transaction waits for its locks before it is
# created in the caller's transaction instead.
SEPARATE_LOCK_TIMEOUT = "2s"


def partition_name(day, table=PARTITIONED_TABLE):
    return "%s_p%s" % (table, day.strftime("%Y%m%d"))


def create_partitioned_table(cr, comment):
    """Create the parent table if it does not exist; return whether it was created.

    Only the columns the partitioning needs: the ORM adds the others as for any
    model. ``bigint`` id (billions of rows); the primary key must hold the
    partition key, so it is (id, timestamp).
    """
    cr.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [PARTITIONED_TABLE])
    row = cr.fetchone()
    if row:
        if row[0] != "p":
            raise RuntimeError(
                "Table %s exists but is not partitioned: this version of iot_usage stores raw "
                "readings in daily partitions; move the old table away (see README, Storage)."
                % PARTITIONED_TABLE
            )
        return False
    cr.execute(SQL(
        """
        CREATE TABLE %(table)s (
            id bigserial NOT NULL,
            timestamp timestamp without time zone NOT NULL,
            PRIMARY KEY (id, timestamp)
        ) PARTITION BY RANGE (timestamp);
        COMMENT ON TABLE %(table)s IS %(comment)s;
        """,
        table=SQL.identifier(PARTITIONED_TABLE), comment=comment,
    ))
    return True


def create_key_table(cr):
    """The keys of readings stored without their row: what deduplication needs, nothing more
    (no id, no foreign key, one unique index)."""
    cr.execute(SQL(
        """
        CREATE TABLE IF NOT EXISTS %s (
            device_id integer NOT NULL,
            message_id varchar NOT NULL,
            timestamp timestamp without time zone NOT NULL,
            UNIQUE (device_id, message_id, timestamp)
        ) PARTITION BY RANGE (timestamp)
        """,
        SQL.identifier(KEY_TABLE),
    ))


def partition_days(cr):
    """The days that have a partition, oldest first.

    ``pg_partition_tree`` reads the catalog as it is now, partitions committed by other
    transactions since this one began included (a query of ``pg_inherits`` would see
    them only as of the transaction's snapshot).
    """
    days = set()
    for table in PARTITIONED_TABLES:
        if not _exists(cr, table):
            continue
        cr.execute("SELECT relid::regclass::text FROM pg_partition_tree(%s::regclass) WHERE isleaf", [table])
        prefix = table + "_p"
        for (name,) in cr.fetchall():
            name = name.strip('"')
            if name.startswith(prefix) and name[len(prefix):].isdigit():
                days.add(datetime.datetime.strptime(name[len(prefix):], "%Y%m%d").date())
    return sorted(days)


def ensure_partitions(cr, days, separately=False):
    """Create the partitions of ``days`` that do not exist; return the days created.

    ``CREATE TABLE ... PARTITION OF`` would take an ACCESS EXCLUSIVE lock on the
    parent, waiting for every running ingestion and blocking the next ones. The table
    is created alone, then attached: ``ATTACH PARTITION`` takes SHARE UPDATE EXCLUSIVE
    on the parent, which concurrent INSERTs and SELECTs do not conflict with (the
    parent has no foreign keys, whose copies would lock the tables they reference).

    ``separately``: in a transaction of its own, committed at once, so that concurrent
    ingestion of the same new day neither waits for the caller's commit nor fails (an
    empty partition is harmless if the caller rolls back). Falls back to the caller's
    transaction when the parent is not committed yet (module install) or the lock is
    not granted within a few seconds (a partition being dropped). The cron creates days
    ahead, so ingestion only does this for a day nobody prepared (a late reading).
    """
    tables = [table for table in PARTITIONED_TABLES if _exists(cr, table)]
    missing = [
        day for day in sorted(set(days))
        if not all(_exists(cr, partition_name(day, table)) for table in tables)
    ]
    if not missing:
        return []
    if separately:
        try:
            with closing(db_connect(cr.dbname).cursor()) as own:
                own.execute("SET lock_timeout = %s", [SEPARATE_LOCK_TIMEOUT])
                if all(_exists(own, table) for table in tables):
                    created = _create(own, tables, missing)
                    own.commit()
                    return created
        except psycopg2.errors.LockNotAvailable:
            pass
    return _create(cr, tables, missing)


def _create(cr, tables, days):
    created = []
    for day in days:
        advisory_lock(cr, LockNamespace.USAGE_PARTITION, day.toordinal())
        for table in tables:
            name = partition_name(day, table)
            if _exists(cr, name):  # created by the transaction we waited for
                continue
            cr.execute(SQL(
                """
                CREATE TABLE %(partition)s (LIKE %(table)s INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
                ALTER TABLE %(table)s ATTACH PARTITION %(partition)s FOR VALUES FROM (%(start)s) TO (%(stop)s);
                """,
                partition=SQL.identifier(name), table=SQL.identifier(table),
                start=day, stop=day + datetime.timedelta(days=1),
            ))
            created.append(day)
    return sorted(set(created))


def lock_partition(cr, day, timeout):
    """Hold the day's raw partition against inserts until this transaction ends.

    ``LOCK TABLE ... IN SHARE MODE`` waits (at most ``timeout``, else ``LockNotAvailable``)
    for the transactions inserting into it to end, and makes the next ones wait for this
    one. Called first in its transaction (``LOCK TABLE`` and ``SET`` take no snapshot):
    the snapshot of the statements that follow then holds every reading of the day, those
    committed while the lock was waited for included. A lock taken after a query would
    leave out what was committed in between (README, Raw readings).
    """
    cr.execute(SQL("SET LOCAL lock_timeout = %s", timeout))
    cr.execute(SQL("LOCK TABLE %s IN SHARE MODE", SQL.identifier(partition_name(day))))
    cr.execute(SQL("SET LOCAL lock_timeout = DEFAULT"))


def drop_partition(cr, day):
    """Drop a day's partitions (their rows go with them, at no per-row cost)."""
    for table in PARTITIONED_TABLES:
        cr.execute(SQL("DROP TABLE IF EXISTS %s", SQL.identifier(partition_name(day, table))))


def _exists(cr, name):
    cr.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
    return cr.fetchone()[0]


def count_partitioned_tables_as_existing():
    """Make Odoo's ``existing_tables`` see partitioned tables (the module's ``post_load``).

    ``odoo/tools/sql.py`` counts regular tables, views and materialized views (relkind
    'r', 'v', 'm'), not partitioned tables ('p'): the registry would report iot_usage
    missing at every load ("Model iot.usage has no table") and ``BaseModel._auto_init``
    would try to CREATE it again. For every statement the ORM runs on it, a partitioned
    table is a table; only foreign keys stay the module's (``is_an_ordinary_table``).
    """
    if getattr(odoo_sql.existing_tables, "counts_partitioned", False):
        return

    def existing_tables(cr, tablenames):
        cr.execute(odoo_sql.SQL(
            """
            SELECT c.relname
              FROM pg_class c
              JOIN pg_namespace n ON (n.oid = c.relnamespace)
             WHERE c.relname IN %s
               AND c.relkind IN ('r', 'v', 'm', 'p')
               AND n.nspname = current_schema
            """,
            tuple(tablenames),
        ))
        return [row[0] for row in cr.fetchall()]

    existing_tables.counts_partitioned = True
    odoo_sql.existing_tables = existing_tables
