from . import test_preset_webhooks
