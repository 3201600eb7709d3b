from . import iot_wallet
from . import iot_wallet_grant
from . import iot_wallet_entry
from . import iot_wallet_reservation
