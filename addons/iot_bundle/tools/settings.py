"""Typed device settings: how a value is written, checked and sent.

A value is stored as normalized text (so that one column holds every type and two equal
values compare equal) and sent to the device as JSON: a number, ``true``/``false`` or the
choice's text.
"""

from decimal import Decimal, InvalidOperation

SETTING_TYPES = [("number", "Number"), ("boolean", "Boolean"), ("choice", "Choice")]
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}


def parse_setting_value(value_type, text, choices=()):
    """The normalized text of ``text`` for a setting of ``value_type``; ValueError saying why
    when it is not a valid value (``choices``: the allowed values of a choice)."""
    text = (text if isinstance(text, str) else str(text)).strip()
    if value_type == "number":
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError("%r is not a number" % text) from None
        if not number.is_finite():
            raise ValueError("%r is not a number" % text)
        # 7, 7.0 and 7.00 are one value: the text is the shortest exact form.
        normalized = number.normalize()
        if normalized == normalized.to_integral():
            normalized = normalized.to_integral()
        return f"{normalized:f}"
    if value_type == "boolean":
        word = text.lower()
        if word in TRUE_WORDS:
            return "true"
        if word in FALSE_WORDS:
            return "false"
        raise ValueError("%r is not a boolean (true or false)" % text)
    if value_type == "choice":
        if text not in choices:
            raise ValueError("%r is not one of the allowed values: %s" % (text, ", ".join(choices)))
        return text
    raise ValueError("unknown setting type %r" % value_type)


def to_json_value(value_type, text):
    """What the device receives for a normalized value."""
    if value_type == "number":
        number = Decimal(text)
        return int(number) if number == number.to_integral() else float(number)
    if value_type == "boolean":
        return text == "true"
    return text


def merge_settings(layers):
    """Merge ``layers`` (iterables of (code, value), from the lowest to the highest
    priority) into one dict sorted by code: a later layer overrides an earlier one."""
    merged = {}
    for layer in layers:
        for code, value in layer:
            merged[code] = value
    return dict(sorted(merged.items()))
