"""Rounding a set of exact amounts to the cent so that they add up to a given total."""

from decimal import ROUND_FLOOR, Decimal


def allocate(raw_amounts, target, quantum):
    """Round ``raw_amounts`` (Decimals) to ``quantum`` so that they add up to ``target`` exactly.

    Largest remainder: every amount is rounded down, then the cents still missing go
    to the amounts that lost most by it (ties to the first). Used where a total is
    fixed (an invoice's company amount, a share rounded once per rule) and its
    detail must add up to it.
    """
    floors = [value.quantize(quantum, rounding=ROUND_FLOOR) for value in raw_amounts]
    missing = int((target - sum(floors, Decimal(0))) / quantum)
    if not 0 <= missing <= len(floors):
        raise ValueError("cannot allocate %s over amounts adding up to %s" % (target, sum(raw_amounts)))
    if missing:
        order = sorted(range(len(floors)), key=lambda index: floors[index] - raw_amounts[index])
        for index in order[:missing]:
            floors[index] += quantum
    return floors
