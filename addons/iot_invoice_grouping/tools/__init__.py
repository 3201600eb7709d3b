from .detail_export import COLUMNS, csv_file, iter_detail_rows, temporary_path, xlsx_file
