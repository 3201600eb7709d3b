from . import res_company
from . import product_template
from . import iot_contract
from . import iot_invoicing_schedule
from . import iot_billing_run
