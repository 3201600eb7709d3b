from .allocation import allocate
from .settlement_detail import SETTLEMENT_DETAIL, detail_query, iter_detail_rows, totals_query
