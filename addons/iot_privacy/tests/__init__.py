from . import test_counts_only
