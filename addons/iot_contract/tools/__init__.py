from .periods import PERIOD_MONTHS, item_date_end, overlap_days, period_bounds, prorate, split_periods
