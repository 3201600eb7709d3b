from . import iot_wallet_topup
