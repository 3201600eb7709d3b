from . import iot_usage_import_wizard
from . import iot_usage_calculator_test_wizard
