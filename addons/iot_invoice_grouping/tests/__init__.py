from . import test_grouping_policies
from . import test_detail_export
from . import test_large_fleet
from . import test_detail_is_what_was_billed
from . import test_accounting_rules
from . import test_detail_steps
from . import test_billing_in_steps
