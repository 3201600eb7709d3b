from .api_input import (
    MAX_API_BATCH,
    ApiInputError,
    check_batch,
    dump_payload,
    entry_identifier,
    id_or_reference,
    optional_payload,
    parse_entries,
    parse_date,
    parse_utc_timestamp,
    require_entry,
    require_identifier,
    require_text,
    resolve_by_id_or_code,
    storable_text,
)
from .numbers import to_decimal
