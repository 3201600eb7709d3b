from . import iot_wallet
from . import iot_wallet_grant
from . import iot_wallet_entry
from . import iot_wallet_reservation
from . import ir_http
from . import res_company
