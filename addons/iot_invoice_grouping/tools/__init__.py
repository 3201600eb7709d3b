from .detail_export import (
    COLUMNS,
    XLSX_MAX_DETAIL_ROWS,
    csv_file,
    csv_gzip_header,
    gzip_member,
    iter_detail_page,
    iter_detail_rows,
    temporary_path,
    write_csv_rows,
    write_csv_totals,
    xlsx_file,
)
