from .api_input import (
    MAX_API_BATCH,
    ApiInputError,
    check_batch,
    dump_payload,
    optional_payload,
    parse_utc_timestamp,
    require_entry,
    require_text,
    storable_text,
)
from .numbers import to_decimal
