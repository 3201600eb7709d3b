"""Daily range partitions of the raw readings table (``iot_usage``) and of the keys of
readings kept without their row (``iot_usage_key``, companies that keep no raw readings).

PostgreSQL declarative partitioning: the parent table holds no rows, each UTC day
of ``timestamp`` has its own table ``iot_usage_pYYYYMMDD`` (``iot_usage_key_pYYYYMMDD``).
A day past the retention window goes away with ``DROP TABLE`` (no DELETE, no vacuum,
no bloat). Both tables always have the same days.

Plain functions, not a model: this is DDL machinery, the models call it.
"""

import datetime

from psycopg2 import sql

from odoo.tools import sql as odoo_sql

PARTITIONED_TABLE = "iot_usage"
KEY_TABLE = "iot_usage_key"
PARTITIONED_TABLES = (PARTITIONED_TABLE, KEY_TABLE)
# Lock keys of pg_advisory_xact_lock: a transaction creating a day's partition
# holds the lock of that day until it ends (two creators of one day queue up).
_LOCK_NAMESPACE = 0x10717


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
    cr.execute(sql.SQL(
        """
        CREATE TABLE {table} (
            id bigserial NOT NULL,
            timestamp timestamp without time zone NOT NULL,
            PRIMARY KEY (id, timestamp)
        ) PARTITION BY RANGE (timestamp);
        COMMENT ON TABLE {table} IS %s;
        """
    ).format(table=sql.Identifier(PARTITIONED_TABLE)), [comment])
    return True


def create_key_table(cr):
    """The keys of readings stored without their row: what deduplication needs, nothing more
    (no id, no foreign key, one unique index)."""
    cr.execute(sql.SQL(
        """
        CREATE TABLE IF NOT EXISTS {table} (
            device_id integer NOT NULL,
            message_id varchar NOT NULL,
            timestamp timestamp without time zone NOT NULL,
            UNIQUE (device_id, message_id, timestamp)
        ) PARTITION BY RANGE (timestamp)
        """
    ).format(table=sql.Identifier(KEY_TABLE)))


def partition_days(cr):
    """The days that have a partition, oldest first."""
    cr.execute(
        """
        SELECT parent.relname, child.relname
          FROM pg_inherits
          JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
          JOIN pg_class child ON child.oid = pg_inherits.inhrelid
         WHERE pg_inherits.inhparent = ANY(ARRAY[to_regclass(%s), to_regclass(%s)])
        """,
        list(PARTITIONED_TABLES),
    )
    days = set()
    for parent, name in cr.fetchall():
        prefix = parent + "_p"
        if name.startswith(prefix):
            days.add(datetime.datetime.strptime(name[len(prefix):], "%Y%m%d").date())
    return sorted(days)


def ensure_partitions(cr, days):
    """Create the partitions of ``days`` that do not exist; return the days created.

    ``CREATE TABLE ... PARTITION OF`` would take an ACCESS EXCLUSIVE lock on the
    parent, waiting for every running ingestion and blocking the next ones (and two
    such creators in ingesting transactions deadlock). The table is created alone,
    then attached: ``ATTACH PARTITION`` takes SHARE UPDATE EXCLUSIVE on the parent,
    which concurrent INSERTs and SELECTs do not conflict with. The cron creates days
    ahead, so ingestion only does this for a day nobody prepared (a late reading).
    """
    tables = [table for table in PARTITIONED_TABLES if _exists(cr, table)]
    missing = [
        day for day in sorted(set(days))
        if not all(_exists(cr, partition_name(day, table)) for table in tables)
    ]
    created = []
    for day in missing:
        cr.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, day.toordinal()])
        for table in tables:
            name = partition_name(day, table)
            if _exists(cr, name):  # created by the transaction we waited for
                continue
            cr.execute(sql.SQL(
                """
                CREATE TABLE {partition} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
                ALTER TABLE {table} ATTACH PARTITION {partition} FOR VALUES FROM (%s) TO (%s);
                """
            ).format(partition=sql.Identifier(name), table=sql.Identifier(table)),
                [day, day + datetime.timedelta(days=1)])
            created.append(day)
    return sorted(set(created))


def drop_partition(cr, day):
    """Drop a day's partitions (their rows go with them, at no per-row cost)."""
    for table in PARTITIONED_TABLES:
        cr.execute(sql.SQL("DROP TABLE IF EXISTS {partition}").format(
            partition=sql.Identifier(partition_name(day, table))))


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
