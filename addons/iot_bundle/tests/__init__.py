from . import test_bundle_fee
from . import test_presets
from . import test_bundle_detail
