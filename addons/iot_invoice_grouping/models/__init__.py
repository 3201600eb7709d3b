from . import res_company
from . import iot_contract_item
from . import iot_contract
from . import account_move_line
from . import account_move
from . import account_move_send
from . import iot_invoice_detail_part
