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
from .cron_budget import CronBudget, prefork_limit_start
from .billing_lock import LOCK_NAMESPACE, try_lock_for_billing, try_lock_for_valuation
