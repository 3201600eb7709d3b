from . import iot_device_type
from . import iot_device_tag
from . import iot_device_event
from . import iot_device
from . import iot_device_command
