from . import res_company
from . import account_move
from . import iot_device_command
