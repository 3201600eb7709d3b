"""Turn one MQTT message into the entries the Odoo API takes.

The bridge validates only what it must to address the entry (topic, UTF-8,
JSON, object or list shape, size). Field-level checks (missing metric, bad
timestamp, unknown device...) stay in Odoo, which stores those entries as
rejected readings with their reason: one place decides what is valid.
"""

import base64
import json

USAGE = "usage"
EVENTS = "events"
# Most entries one gateway message may carry (the Odoo API takes 10,000 per call).
MAX_ENTRIES_PER_MESSAGE = 10000


class Parsed:
    """What one MQTT message yields: usage records, events and reject items."""

    __slots__ = ("usage", "events", "rejects")

    def __init__(self):
        self.usage = []
        self.events = []
        self.rejects = []

    def __len__(self):
        return len(self.usage) + len(self.events) + len(self.rejects)


def reject_item(topic, raw, reason):
    """An ``iot.usage.api_reject`` item; binary payloads travel as base64."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raw = "base64:" + base64.b64encode(raw).decode("ascii")
    return {"topic": topic, "raw": raw, "reason": reason}


def parse_topic(topic, prefix=""):
    """Return (identifier, kind) for ``[prefix/]iot/<identifier>/<usage|events>``, else None."""
    if prefix:
        if not topic.startswith(prefix):
            return None
        topic = topic[len(prefix):]
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != "iot" or parts[2] not in (USAGE, EVENTS) or not parts[1]:
        return None
    return parts[1], parts[2]


def _refuse_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def parse_message(topic, payload, prefix="", max_bytes=256 * 1024):
    """Parse one message; never raises: anything unusable becomes a reject item."""
    parsed = Parsed()
    address = parse_topic(topic, prefix)
    if address is None:
        parsed.rejects.append(reject_item(topic, payload[:4096], "unexpected topic"))
        return parsed
    identifier, kind = address
    if len(payload) > max_bytes:
        parsed.rejects.append(reject_item(
            topic, payload[:4096],
            "payload of %d bytes exceeds the limit of %d (first 4096 bytes kept)" % (len(payload), max_bytes),
        ))
        return parsed
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        parsed.rejects.append(reject_item(topic, payload, "payload is not UTF-8: %s" % error))
        return parsed
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        parsed.rejects.append(reject_item(topic, text, "payload is not JSON: %s" % error))
        return parsed
    if isinstance(data, dict):
        entries = [data]
    elif isinstance(data, list) and data:
        entries = data
        if len(entries) > MAX_ENTRIES_PER_MESSAGE:
            parsed.rejects.append(reject_item(
                topic, text[:4096],
                "list of %d entries exceeds %d per message" % (len(entries), MAX_ENTRIES_PER_MESSAGE),
            ))
            return parsed
    else:
        parsed.rejects.append(reject_item(topic, text, "payload must be a JSON object or a non-empty list of objects"))
        return parsed
    target = parsed.usage if kind == USAGE else parsed.events
    for entry in entries:
        if not isinstance(entry, dict):
            parsed.rejects.append(reject_item(topic, json.dumps(entry), "entry must be a JSON object"))
            continue
        # The topic names the device: a payload cannot speak for another one.
        target.append(dict(entry, identifier=identifier))
    return parsed
