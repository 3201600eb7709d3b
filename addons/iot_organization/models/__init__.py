from . import account_move
from . import iot_billing_engine
from . import iot_contract
from . import iot_contract_payer
from . import iot_device
from . import iot_device_event
from . import iot_device_user
from . import res_partner
