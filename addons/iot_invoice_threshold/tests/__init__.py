from . import test_invoice_threshold
