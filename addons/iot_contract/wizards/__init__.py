from . import iot_device_activate_wizard
from . import iot_billing_run_wizard
from . import iot_contract_item_change_plan_wizard
