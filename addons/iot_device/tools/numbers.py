from decimal import Decimal


def to_decimal(value):
    """Field values to Decimal, floats through their shortest text, never their binary value
    (0.1 stays 0.1): money and quantities are computed exactly from what Odoo stored."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value or 0)
