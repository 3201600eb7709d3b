from .periods import (
    BILLING_PERIODS,
    PERIOD_MONTHS,
    SCHEDULE_PARTS,
    item_date_end,
    overlap_days,
    period_bounds,
    period_share,
    prorate,
    split_periods,
)
