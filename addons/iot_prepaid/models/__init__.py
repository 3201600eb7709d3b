from . import iot_wallet
from . import iot_wallet_grant
from . import iot_wallet_entry
from . import iot_wallet_reservation
from . import product_template
from . import iot_contract
from . import iot_contract_item
from . import iot_usage
