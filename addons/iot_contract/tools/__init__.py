from .periods import (
    BILL_CYCLES,
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
from .committed_steps import (
    CommittedSteps,
    CronBudget,
    Outcome,
    can_commit,
    is_concurrency_error,
    prefork_limit_start,
)
from .locks import (
    LOCK_NAMESPACE,
    LockNamespace,
    RowLock,
    advisory_lock,
    claim_rows,
    try_advisory_lock,
    try_lock_for_billing,
    try_lock_for_valuation,
)
