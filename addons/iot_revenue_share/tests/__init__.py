from . import test_allocation
from . import test_smart_city
from . import test_rules
from . import test_companies_and_access
from . import test_currency
from . import test_detail_download
