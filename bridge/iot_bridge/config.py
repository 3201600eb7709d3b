"""Bridge configuration: defaults < config file (INI or TOML) < IOT_BRIDGE_* environment.

INI: one ``[bridge]`` section. TOML: top-level keys or a ``[bridge]`` table.
Every key can be overridden by the environment variable ``IOT_BRIDGE_<KEY>``
(upper case), e.g. ``IOT_BRIDGE_ODOO_KEY``.
"""

import configparser
import dataclasses
import os
import socket

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None


class ConfigError(ValueError):
    """The configuration is unusable; the message says which key and why."""


@dataclasses.dataclass
class Config:
    # MQTT broker
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str = ""
    mqtt_password: str = ""
    mqtt_tls: bool = False
    # "3.1.1" (default) or "5" (needed for shared subscriptions with clean_start off + expiry)
    mqtt_protocol: str = "3.1.1"
    # A fixed client id is what makes the session persistent; each instance of
    # a scaled-out group needs its own ("{hostname}" is replaced).
    mqtt_client_id: str = "iot-bridge"
    mqtt_keepalive: int = 30
    # MQTT 5 only: how long the broker keeps the session (and queues messages) while we are away
    mqtt_session_expiry: int = 7 * 24 * 3600
    # Unacknowledged QoS 1 messages the broker may send us (the inflight window): sent as the
    # Receive Maximum on CONNECT with MQTT 5; with 3.1.1 the broker's max_inflight_messages
    # decides, set this to the same value. A batch holds at most half of it, so the broker
    # keeps sending the next batch's messages while one is in Odoo.
    mqtt_receive_maximum: int = 1000
    # MQTT 5 / Mosquitto: share the subscriptions in $share/<group>/... (scale-out)
    mqtt_shared_group: str = ""
    # Optional tenant prefix, e.g. "acme" -> acme/iot/<identifier>/usage
    topic_prefix: str = ""
    subscribe_usage: bool = True
    subscribe_events: bool = True
    dead_letter_topic: str = "iot/_bridge/dead-letter"
    # Odoo JSON-RPC
    odoo_url: str = "http://127.0.0.1:8069"
    odoo_db: str = ""
    odoo_login: str = "iot-bridge"
    # an API key (preferred) or the password of the integration user
    odoo_key: str = ""
    odoo_timeout: float = 120.0
    # Batching: a batch is sent once it holds batch_size entries (readings + events + rejects)
    # and no further message is waiting; while messages are waiting it keeps taking them, up
    # to batch_size_max entries (one Odoo call) or half the inflight window in messages.
    batch_size: int = 1000
    batch_size_max: int = 10000
    batch_max_delay: float = 1.0  # seconds a received message may wait before a flush
    # Flush early when no message arrived for this long: the broker stops sending once
    # its inflight window (max_inflight_messages / Receive Maximum) is unacknowledged.
    batch_idle_flush: float = 0.05
    # Spool (used while Odoo is unreachable)
    spool_dir: str = "var/bridge-spool"
    spool_max_mb: float = 1024.0
    retry_initial: float = 1.0
    retry_max: float = 60.0
    # Bad input
    max_payload_bytes: int = 256 * 1024
    # Observability
    stats_interval: float = 60.0
    log_level: str = "INFO"

    @property
    def prefix(self):
        prefix = self.topic_prefix.strip("/")
        return prefix + "/" if prefix else ""

    def subscriptions(self):
        topics = []
        if self.subscribe_usage:
            topics.append(self.prefix + "iot/+/usage")
        if self.subscribe_events:
            topics.append(self.prefix + "iot/+/events")
        if self.mqtt_shared_group:
            topics = ["$share/%s/%s" % (self.mqtt_shared_group, topic) for topic in topics]
        return topics

    @property
    def client_id(self):
        return self.mqtt_client_id.replace("{hostname}", socket.gethostname())

    def validate(self):
        if self.mqtt_protocol not in ("3.1.1", "5"):
            raise ConfigError("mqtt_protocol must be '3.1.1' or '5', got %r" % self.mqtt_protocol)
        if not self.odoo_db:
            raise ConfigError("odoo_db is required (file key odoo_db or IOT_BRIDGE_ODOO_DB)")
        if not self.odoo_key:
            raise ConfigError(
                "odoo_key is required: an API key of the integration user "
                "(file key odoo_key or IOT_BRIDGE_ODOO_KEY)"
            )
        if not self.mqtt_client_id:
            raise ConfigError("mqtt_client_id must not be empty: the persistent session needs it")
        if not 1 <= self.batch_size <= 10000:
            raise ConfigError("batch_size must be between 1 and 10000")
        if not self.batch_size <= self.batch_size_max <= 10000:
            raise ConfigError("batch_size_max must be between batch_size (%d) and 10000" % self.batch_size)
        if not 2 <= self.mqtt_receive_maximum <= 65535:
            raise ConfigError("mqtt_receive_maximum must be between 2 and 65535")
        for key in ("batch_max_delay", "retry_initial", "retry_max", "spool_max_mb", "stats_interval"):
            if getattr(self, key) <= 0:
                raise ConfigError("%s must be positive" % key)
        return self


def _convert(field, raw):
    if isinstance(raw, str):
        raw = raw.strip()
    try:
        if field.type in (bool, "bool"):
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if field.type in (int, "int"):
            return int(raw)
        if field.type in (float, "float"):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError):
        raise ConfigError("%s: %r is not a valid %s" % (field.name, raw, field.type)) from None


def _read_file(path):
    if path.endswith(".toml"):
        if tomllib is None:
            raise ConfigError("TOML configuration needs Python 3.11+; use an INI file")
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
        return data.get("bridge", data)
    parser = configparser.ConfigParser(interpolation=None)
    if not parser.read(path):
        raise ConfigError("cannot read configuration file %s" % path)
    if not parser.has_section("bridge"):
        raise ConfigError("%s has no [bridge] section" % path)
    return dict(parser["bridge"])


def load(path=None, environ=None):
    """Build the configuration from defaults, an optional file and the environment."""
    environ = os.environ if environ is None else environ
    fields = {field.name: field for field in dataclasses.fields(Config)}
    values = {}
    path = path or environ.get("IOT_BRIDGE_CONFIG")
    if path:
        for key, raw in _read_file(path).items():
            if key not in fields:
                raise ConfigError("%s: unknown key %r" % (path, key))
            values[key] = _convert(fields[key], raw)
    for name, field in fields.items():
        env_name = "IOT_BRIDGE_" + name.upper()
        if env_name in environ:
            values[name] = _convert(field, environ[env_name])
    return Config(**values).validate()
