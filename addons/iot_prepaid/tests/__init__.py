from . import test_prepaid_ledger
from . import test_prepaid_golden
from . import test_prepaid_credit
from . import test_prepaid_reservation
from . import test_prepaid_companies
