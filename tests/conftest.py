"""Fixtures of the cross-process tests: a private broker, a real Odoo server, bridges."""

from bridge_fixtures import (  # noqa: F401 - importing registers the fixtures for every test here
    bridge_workdir_fixture,
    broker_fixture,
    odoo_server_fixture,
    only_billing_crons_fixture,
    run_bridge_fixture,
    server_db_fixture,
)
