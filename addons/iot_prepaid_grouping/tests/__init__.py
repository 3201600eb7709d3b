from . import test_prepaid_detail
