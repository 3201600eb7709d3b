from . import iot_subscription_count_report
