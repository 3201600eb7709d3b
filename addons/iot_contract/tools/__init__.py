from .periods import (
    BILLING_PERIODS,
    PERIOD_MONTHS,
    item_date_end,
    period_bounds,
    period_share,
    prorate,
    split_periods,
)
