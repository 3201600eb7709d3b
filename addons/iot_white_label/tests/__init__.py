from . import test_tenant_isolation, test_white_label
