from .periods import PERIOD_MONTHS, item_date_end, period_bounds, period_share, prorate, split_periods
