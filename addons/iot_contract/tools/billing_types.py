"""What the billing engine and the modules that extend it hand each other.

Plain dicts at run time (they are built by the ten thousand per chunk), typed here so that
each key is declared once: by the module that adds it. A module adding keys declares a
``TypedDict`` of its own that extends these (iot_usage: ``UsageLinePart``; iot_invoice_grouping:
``GroupingInfo``).
"""

import dataclasses
import datetime
import enum
from decimal import Decimal
from typing import Any, TypedDict


class LinePart(TypedDict, total=False):
    """What one invoice line bills of one schedule: its fixed fee, or one usage amount.

    Made by ``iot.invoicing.schedule._iot_invoice_line_parts``; an invoice line bills one or
    several parts (``iot.contract._iot_prepare_invoice_lines``), which are linked to it once
    it exists (``iot.invoicing.schedule._iot_link_invoice_lines``): the invoice's detail.
    """

    schedule_id: int
    kind: str  # "fixed" or "usage"
    product_id: int
    name: str
    quantity: float | Decimal
    price_unit: float | Decimal
    amount: float | Decimal  # quantity x price_unit, rounded in the currency
    currency_id: int


class ScheduleInfo(TypedDict, total=False):
    """What invoice lines need of one schedule beyond its parts
    (``iot.contract._iot_schedule_group_info``)."""

    date_from: datetime.date
    date_to: datetime.date
    device_id: int  # 0 for a plain subscription
    billing_period: str
    cycle_anchor: datetime.date | None  # anniversary cycle's anchor; None on the calendar cycle


class LineSummary(TypedDict):
    """The sums one invoice line of several parts is built from
    (``iot.contract._iot_summary_line_vals``): in memory when billed at once, in SQL from the
    staged parts when billed in steps, so that both give the same line."""

    first: LinePart  # the first member part (its label, product, kind)
    info: ScheduleInfo  # the first member's schedule
    count: int
    amount: Decimal
    quantity: Decimal
    prices: set[Decimal]  # the distinct unit prices (two when they differ)
    date_from: datetime.date
    date_to: datetime.date
    period: tuple[datetime.date, datetime.date] | None  # the only period of the members, if one
    devices: int  # devices (and plain subscriptions) billed


class ChunkOutcome(enum.StrEnum):
    """What billing the next chunk of a run did."""

    BILLED = "billed"  # a chunk (or a step of a contract billed in steps) was billed
    HELD = "held"  # due contracts remain, all held by other transactions (other workers)
    RETRY = "retry"  # what it claimed was billed meanwhile: look again with a fresh snapshot
    FINISHED = "finished"  # nothing left to bill


@dataclasses.dataclass(slots=True)
class ChunkTally:
    """What one chunk billed: summed into ``iot.billing.run.chunk``, the run's counters."""

    contracts: int = 0
    schedules: int = 0
    skipped: int = 0
    invoices: int = 0
    errors: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # iot.billing.run.error values

    def __iadd__(self, other):
        self.contracts += other.contracts
        self.schedules += other.schedules
        self.skipped += other.skipped
        self.invoices += other.invoices
        self.errors += other.errors
        return self
