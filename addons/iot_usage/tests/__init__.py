from . import test_usage_ingest
from . import test_calculator_pricing
from . import test_usage_billing
from . import test_bad_input_property
from . import test_bad_input_unstorable
from . import test_rule_wizard_matches_billing
from . import test_usage_freed_periods
from . import test_usage_plan_change
