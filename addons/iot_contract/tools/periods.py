"""Billing periods: slices of a contract item's dates, on its bill cycle.

Calendar cycle: a monthly item starting on 15 April is billed 15-30 April (prorated),
then May, June, ... Quarterly and yearly periods follow calendar quarters and years.
Anniversary cycle: periods start on the cycle's anchor day (the item's start): an item
started on 17 April is billed 17 April - 16 May, 17 May - 16 June, ... Period n starts
n periods after the anchor, on the month's last day when the month is shorter (an item
started on 31 January: 31 Jan - 27 Feb, 28 Feb - 30 Mar, 31 Mar - 29 Apr, ...).
"""

from datetime import timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta

# (code, label, months): the billing periods of plans, contracts and contract items.
_PERIODS = (("monthly", "Monthly", 1), ("quarterly", "Quarterly", 3), ("yearly", "Yearly", 12))
BILLING_PERIODS = [(code, label) for code, label, _months in _PERIODS]  # selection of the fields
# What a schedule bills: fees in arrears bill a period's fee and usage together at its end;
# fees in advance bill the fee at the period's start and its usage, measured by then, at its end.
# A late-usage schedule re-rates a period already invoiced for readings that arrived after it.
SCHEDULE_PARTS = [("all", "Fee and usage"), ("fee", "Fixed fee"), ("usage", "Usage"), ("late", "Late usage")]
PERIOD_MONTHS = {code: months for code, _label, months in _PERIODS}
BILL_CYCLES = [("calendar", "Calendar"), ("anniversary", "Anniversary")]


def period_bounds(day, billing_period, anchor=None):
    """First and last day of the period that contains ``day``: the calendar period, or with
    ``anchor`` (the first day of an anniversary cycle; None or False: calendar) the cycle's period."""
    months = PERIOD_MONTHS[billing_period]
    if not anchor:
        start = day.replace(month=((day.month - 1) // months) * months + 1, day=1)
        return start, start + relativedelta(months=months, days=-1)
    # Each start is counted from the anchor, never from the previous start, so that an anchor
    # on the 31st comes back to the 31st after a short month.
    index = ((day.year - anchor.year) * 12 + day.month - anchor.month) // months
    if anchor + relativedelta(months=index * months) > day:
        index -= 1
    start = anchor + relativedelta(months=index * months)
    return start, anchor + relativedelta(months=(index + 1) * months, days=-1)


def split_periods(date_start, date_end, billing_period, anchor=None):
    """Yield ``(date_from, date_to, period_start, period_end)`` covering the item's dates."""
    current = date_start
    while current <= date_end:
        period_start, period_end = period_bounds(current, billing_period, anchor)
        yield current, min(period_end, date_end), period_start, period_end
        current = period_end + timedelta(days=1)


def item_date_end(date_start, duration_months):
    """Last day (inclusive) of an item of ``duration_months`` starting on ``date_start``."""
    return date_start + relativedelta(months=duration_months, days=-1)


def prorate(price, date_from, date_to, period_start, period_end, currency, days_off=0):
    """Price of a partial period: days billed / days of the full period, rounded at the end.

    ``days_off``: days of ``date_from``..``date_to`` not billed (a suspension that pauses fees).
    """
    days = (date_to - date_from).days + 1 - days_off
    period_days = (period_end - period_start).days + 1
    if days >= period_days:
        return price
    return currency.round(price * max(days, 0) / period_days)


def period_share(date_from, date_to, billing_period, anchor=None):
    """Share of its full billing period that ``date_from``..``date_to`` covers, as an exact
    fraction: 1 for a full period, 2/30 for the last two days of April."""
    period_start, period_end = period_bounds(date_from, billing_period, anchor)
    days = (date_to - date_from).days + 1
    period_days = (period_end - period_start).days + 1
    return Decimal(1) if days >= period_days else Decimal(days) / Decimal(period_days)


def overlap_days(date_from, date_to, intervals):
    """Days of ``date_from``..``date_to`` inside the (disjoint, inclusive) ``intervals``."""
    return sum(
        max((min(date_to, end) - max(date_from, start)).days + 1, 0) for start, end in intervals
    )
