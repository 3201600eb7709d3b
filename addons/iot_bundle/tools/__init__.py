from .settings import SETTING_TYPES, merge_settings, parse_setting_value, to_json_value
