from . import test_collective_invoice
from . import test_collective_claims
from . import test_reparenting
from . import test_device_users
from . import test_payer_follow_up
