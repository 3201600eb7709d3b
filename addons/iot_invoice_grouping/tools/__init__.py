from .detail_export import COLUMNS, csv_bytes, iter_detail_rows, xlsx_bytes
