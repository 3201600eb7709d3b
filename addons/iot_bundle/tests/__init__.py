from . import test_bundle_fee
from . import test_presets
