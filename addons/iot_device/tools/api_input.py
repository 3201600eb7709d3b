"""Validation of the values device platforms send to the external API.

Shared by every IoT module so that one malformed entry is reported the same
way everywhere, and never fails the rest of its batch.
"""

import json
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta

from odoo import fields

MAX_API_BATCH = 10000
# Device identifiers (serial number, IMEI, DevEUI) are at most this long.
IDENTIFIER_LENGTH = 128
# Readings from before this date are almost certainly a device clock reset (epoch 0).
OLDEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
# Device clocks drift; anything further ahead than this is a clock error, not data.
FUTURE_TOLERANCE = timedelta(days=1)
# Dates of the API (activation start, transition date): a date outside this window
# is a typo or a clock reset, and would create schedules Python dates cannot hold.
API_DATE_YEARS_AHEAD = 100


class ApiInputError(ValueError):
    """One entry of an API batch is malformed; the message says why."""


def check_batch(entries, limit=MAX_API_BATCH):
    """Reject a whole call whose shape is wrong before anything is applied."""
    if not isinstance(entries, (list, tuple)):
        raise ApiInputError("expected a list of entries, got %s" % type(entries).__name__)
    if len(entries) > limit:
        raise ApiInputError(
            "batch of %d entries exceeds the limit of %d per call; split it" % (len(entries), limit)
        )


def require_text(entry, key, max_length, required=True):
    """Return entry[key] stripped, or None when optional and absent."""
    value = entry.get(key)
    if value is None or value == "":
        if required:
            raise ApiInputError("missing '%s'" % key)
        return None
    if not isinstance(value, str):
        raise ApiInputError("'%s' must be a string, got %s" % (key, type(value).__name__))
    value = value.strip()
    if not value:
        raise ApiInputError("'%s' is blank" % key)
    if len(value) > max_length:
        raise ApiInputError("'%s' is longer than %d characters" % (key, max_length))
    if "\x00" in value:
        raise ApiInputError("'%s' contains a NUL character" % key)
    if not _is_utf8(value):
        # A lone surrogate ("\\ud800" in JSON) cannot be stored: it would fail the whole batch.
        raise ApiInputError("'%s' is not valid Unicode text (lone surrogate)" % key)
    return value


def require_identifier(entry):
    """The device identifier of an entry, stripped; every API names devices this way."""
    return require_text(entry, "identifier", IDENTIFIER_LENGTH)


def parse_entries(entries, parse):
    """Parse each entry of an API batch with ``parse``; return ``(results, parsed)``:
    ``results`` one slot per entry, holding ``{"identifier", "error"}`` for the malformed
    ones (None for the others, for the caller to fill), ``parsed`` index -> parsed entry."""
    results, parsed = [None] * len(entries), {}
    for index, entry in enumerate(entries):
        try:
            parsed[index] = parse(entry)
        except ApiInputError as error:
            results[index] = {"identifier": entry_identifier(entry), "error": str(error)}
    return results, parsed


def id_or_reference(entry, key, max_length=128):
    """An entry's way of naming a record: an id (integer) or a reference (text); None when absent."""
    value = entry.get(key)
    if value in (None, "", False):
        return None
    if isinstance(value, str):
        return require_text(entry, key, max_length)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiInputError("'%s' must be an id or a reference" % key)
    return value


def entry_identifier(entry):
    """The identifier an entry claims, for error reports, whatever its shape.

    False, not None, when there is none: XML-RPC cannot marshal None.
    """
    if isinstance(entry, dict) and isinstance(entry.get("identifier"), str):
        return entry["identifier"][:IDENTIFIER_LENGTH]
    return False


def _is_utf8(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_utc_timestamp(value, now=None):
    """Parse an ISO 8601 timestamp that carries its zone; return naive UTC (Odoo's storage).

    A timestamp without a zone is refused rather than guessed: a wrong guess
    moves readings between billing periods.
    """
    if not isinstance(value, str):
        raise ApiInputError("timestamp must be an ISO 8601 string, got %s" % type(value).__name__)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiInputError("timestamp %r is not ISO 8601" % value[:64]) from None
    if moment.tzinfo is None:
        raise ApiInputError("timestamp %r has no time zone (add 'Z' or an offset)" % value[:64])
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted by its offset
        raise ApiInputError("timestamp %r is out of range" % value[:64]) from None
    now = now or datetime.now(UTC)
    if moment < OLDEST_TIMESTAMP:
        raise ApiInputError("timestamp %s is before %s" % (moment.isoformat(), OLDEST_TIMESTAMP.date()))
    if moment > now + FUTURE_TOLERANCE:
        raise ApiInputError("timestamp %s is in the future" % moment.isoformat())
    return moment.replace(tzinfo=None)


def parse_date(entry, key):
    """entry[key] as a date ("YYYY-MM-DD"), or None when absent."""
    value = entry.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ApiInputError("'%s' must be a 'YYYY-MM-DD' string" % key)
    try:
        day = fields.Date.to_date(value.strip())
    except ValueError:
        raise ApiInputError("'%s' %r is not a 'YYYY-MM-DD' date" % (key, value[:32])) from None
    if day < OLDEST_TIMESTAMP.date():
        raise ApiInputError("'%s' %s is before %s" % (key, day, OLDEST_TIMESTAMP.date()))
    if day > fields.Date.today() + relativedelta(years=API_DATE_YEARS_AHEAD):
        raise ApiInputError("'%s' %s is more than %d years ahead" % (key, day, API_DATE_YEARS_AHEAD))
    return day


def require_entry(entry):
    """An API entry must be a JSON object; return it."""
    if not isinstance(entry, dict):
        raise ApiInputError("entry must be an object")
    return entry


def optional_payload(entry):
    """The entry's ``payload`` object as JSON text for a jsonb column; None when absent or empty."""
    payload = entry.get("payload")
    return dump_payload(payload) if payload not in (None, {}) else None


def dump_payload(payload):
    """The JSON text of an entry's ``payload`` object, storable in a jsonb column.

    NaN/Infinity (accepted by Python's JSON parser, hence by JSON-RPC and the
    bridge), NUL characters and lone surrogates are refused for this entry
    instead of failing the whole batch in PostgreSQL.
    """
    if not isinstance(payload, dict):
        raise ApiInputError("'payload' must be an object")
    try:
        text = json.dumps(payload, allow_nan=False)
        storable = all(_is_utf8(part) and "\x00" not in part for part in _strings(json.loads(text)))
    except (ValueError, TypeError, RecursionError):
        raise ApiInputError("'payload' is not valid JSON (NaN, Infinity or nesting too deep)") from None
    if not storable:
        raise ApiInputError("'payload' contains a NUL character or invalid Unicode")
    return text


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def storable_text(value, limit=None):
    """Any received value as text PostgreSQL accepts (rejected entries are kept as received):
    NUL characters and lone surrogates are replaced by their escapes."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if limit:
        text = text[:limit]
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def resolve_by_id_or_code(model, keys, code_field, domain, order="id"):
    """Map the ids and codes an API entry may name a record by to the records of ``model``.

    ``keys``: ints (record ids) and strings (values of ``code_field``), as
    parsed from the entries; ``domain`` restricts the search (the caller's
    company). A code several records share goes to the first of them in
    ``order`` (None: the model's order). Access (sudo or not) is the caller's
    choice, made on ``model``.
    """
    ids = [key for key in keys if isinstance(key, int) and not isinstance(key, bool)]
    codes = [key for key in keys if isinstance(key, str)]
    found = {}
    if ids:
        found.update({record.id: record for record in model.search([("id", "in", ids), *domain])})
    if codes:
        for record in model.search([(code_field, "in", codes), *domain], order=order):
            found.setdefault(record[code_field], record)
    return found
