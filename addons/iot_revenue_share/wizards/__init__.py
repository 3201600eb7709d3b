from . import iot_revenue_share_settle_wizard
