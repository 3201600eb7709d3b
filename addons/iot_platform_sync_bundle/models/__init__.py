from . import iot_webhook
from . import iot_contract_item_preset
