from .allocation import allocate
from .detail_export import csv_bytes, iter_detail_rows, xlsx_bytes
