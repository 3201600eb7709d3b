from . import test_api_input
from . import test_device_lifecycle
from . import test_device_api
from . import test_device_security
from . import test_device_command
from . import test_model_names
from . import test_data_noupdate
