from .detail_export import (
    DATE,
    DECIMAL,
    FORMATS,
    NUMBER,
    TEXT,
    XLSX_MAX_DETAIL_ROWS,
    Column,
    DetailExport,
    gzip_member,
    money_format,
    read_and_remove,
    temporary_path,
)
from .invoice_detail import (
    COLUMNS,
    FIXED_PARTS_SQL,
    INVOICE_DETAIL,
    INVOICE_LINE_COLUMNS,
    NO_DEVICE_USER,
    iter_detail_page,
    iter_detail_rows,
    xlsx_row,
)
