from . import test_dunning_levels
from . import test_dunning_payment
from . import test_dunning_api
from . import test_dunning_companies
from . import test_dunning_cron_errors
