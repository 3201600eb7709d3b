from . import iot_webhook
from . import iot_webhook_delivery
from . import iot_webhook_mixin
from . import iot_device
from . import iot_contract_item
from . import res_partner
from . import iot_statistics_source
