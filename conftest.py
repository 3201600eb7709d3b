"""Suite-wide pytest rules: a skipped test is a failed test; known log noise is muted.

Nothing in this suite may pass by not running: a missing service or browser
must turn CI red, not quietly shrink the suite.
"""

import logging

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = "skipped tests count as failures in this project: %s" % (reason,)


class _TestFrameworkImportNoise(logging.Filter):
    """pytest-odoo imports odoo.tests before Odoo's test mode is on, and Odoo logs that as an
    ERROR with a stack trace; it is expected here and would only hide real errors in the output."""

    def filter(self, record):
        return not record.getMessage().startswith("Importing test framework")


logging.getLogger("odoo.tests.common").addFilter(_TestFrameworkImportNoise())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Mark the Odoo test being run, as odoo-bin does (``odoo.tests.suite``) and pytest-odoo does
    only from Odoo 19 on: code that must not commit in a test checks it (``can_commit``)."""
    instance = getattr(item, "instance", None)
    try:
        from odoo.modules import module as odoo_module
        from odoo.tests.common import BaseCase
    except ImportError:  # the top-level tests run without Odoo
        yield
        return
    if not isinstance(instance, BaseCase):
        yield
        return
    previous, odoo_module.current_test = odoo_module.current_test, instance
    try:
        yield
    finally:
        odoo_module.current_test = previous
