from . import test_activation
from . import test_schedules
from . import test_billing
from . import test_billing_concurrency
from . import test_security
from . import test_tour
from . import test_bad_input_api
from . import test_bulk_items
