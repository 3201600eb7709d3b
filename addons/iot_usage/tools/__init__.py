from .partitions import (
    KEY_TABLE,
    PARTITIONED_TABLE,
    count_partitioned_tables_as_existing,
    create_key_table,
    create_partitioned_table,
    drop_partition,
    ensure_partitions,
    lock_partition,
    partition_days,
    partition_name,
)
