"""``python3 -m iot_bridge [-c bridge.ini]``: run the MQTT bridge until SIGTERM/SIGINT."""

import argparse
import logging
import signal
import sys

from . import config as config_module
from .bridge import Bridge


def main(argv=None):
    parser = argparse.ArgumentParser(prog="iot_bridge", description="MQTT -> Odoo bridge of IoT billing")
    parser.add_argument("-c", "--config", help="INI ([bridge] section) or TOML file; "
                        "IOT_BRIDGE_* environment variables override it")
    args = parser.parse_args(argv)
    try:
        config = config_module.load(args.config)
    except (config_module.ConfigError, OSError) as error:
        print("iot_bridge: configuration error: %s" % error, file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bridge = Bridge(config)
    signal.signal(signal.SIGTERM, lambda *_: bridge.stop())
    signal.signal(signal.SIGINT, lambda *_: bridge.stop())
    bridge.start()
    try:
        bridge.run()
    finally:
        bridge.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
