from . import test_statistics_pull, test_webhooks
