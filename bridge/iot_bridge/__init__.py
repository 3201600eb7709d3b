"""MQTT bridge of the IoT billing product: devices publish, Odoo bills.

Runs outside Odoo (it never imports it): ``python3 -m iot_bridge -c bridge.ini``.
See ../README.md for topics, payloads, configuration and delivery guarantees.
"""

__version__ = "18.0.1.0.0"
