from . import test_prepaid_ledger
