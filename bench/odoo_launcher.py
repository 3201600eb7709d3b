"""Runs Odoo's command line from a script path.

Prefork Odoo re-executes ``sys.argv[0]`` to start its gevent process; with
``python3 -m odoo`` that is odoo/__main__.py, which cannot run as a plain script.
"""

import sys

import odoo.cli

if __name__ == "__main__":
    sys.exit(odoo.cli.main())
