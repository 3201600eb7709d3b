"""The bridge: MQTT in (QoS 1, persistent session, manual acks), Odoo JSON-RPC out.

Threads:
- paho's network thread runs ``_on_message``, which only enqueues;
- the worker (``run``) parses, batches, calls Odoo, spools and acknowledges.

A message is acknowledged to the broker only once everything it carried is
committed in Odoo or written to the on-disk spool. Until then the broker
keeps it in the persistent session and redelivers it after a crash;
redelivered duplicates are absorbed by the API's (device, message_id) idempotency.
"""

import json
import logging
import queue
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .odoo_client import OdooAuthError, OdooClient, OdooError, OdooUnavailable
from .payloads import parse_message, reject_item
from .spool import Spool, SpoolFull

_logger = logging.getLogger("iot_bridge")

MAX_CALL = 10000  # entries per Odoo API call
# (model, method, keyword arguments) per spool method name
METHODS = {
    "usage": ("iot.usage", "api_ingest", {"source": "mqtt"}),
    "events": ("iot_billing.device", "api_post_events", {"origin": "mqtt"}),
    "reject": ("iot.usage", "api_reject", {"source": "mqtt"}),
}
# An application error is retried this many times before the call is bisected
# to isolate the entries Odoo cannot take.
APP_ERROR_RETRIES = 2


class Stats:
    def __init__(self):
        self.received = self.forwarded = self.duplicates = self.rejected = 0
        self.spooled = self.dead_lettered = 0
        self.calls = 0  # Odoo calls made (forwarded / calls: the batches' mean size)
        self.lag = 0.0


class BatchLimits:
    """When the batch being gathered goes to Odoo: adaptive to what is waiting.

    With nothing waiting, at ``batch_size`` entries (or earlier on idle or age, see ``run``).
    While more messages are already waiting, the batch keeps taking them: one call of up to
    ``batch_size_max`` entries costs Odoo much less per reading than several small ones.
    It never holds more than half the broker's inflight window in messages, so the broker
    keeps delivering the next batch while this one is in Odoo.
    """

    def __init__(self, config):
        self.size = config.batch_size
        self.size_max = config.batch_size_max
        self.messages_max = max(1, config.mqtt_receive_maximum // 2)

    def full(self, entries, messages, waiting):
        if entries >= self.size_max or messages >= self.messages_max:
            return True
        return entries >= self.size and not waiting


class _Batch:
    def __init__(self):
        self.usage, self.events, self.rejects, self.acks = [], [], [], []
        self.first = None  # when the broker delivered its oldest message (for the lag)
        self.started = None  # when the worker took its first message (for the max delay)

    def __len__(self):
        return len(self.usage) + len(self.events) + len(self.rejects)

    def calls(self):
        for method, items in (("usage", self.usage), ("events", self.events), ("reject", self.rejects)):
            for start in range(0, len(items), MAX_CALL):
                yield method, items[start:start + MAX_CALL]


class Bridge:
    def __init__(self, config, odoo=None):
        self.config = config
        self.stats = Stats()
        self.odoo = odoo or OdooClient(
            config.odoo_url, config.odoo_db, config.odoo_login, config.odoo_key, config.odoo_timeout
        )
        self.spool = Spool(config.spool_dir, int(config.spool_max_mb * 1024 * 1024))
        self.inbox = queue.Queue()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0  # bumped on every (dis)connection: acks of an old connection are void
        self._retry_delay = config.retry_initial
        self._next_retry = 0.0
        self._odoo_down_logged = False
        self._next_auth = 0.0
        self._auth_delay = config.retry_initial
        self.limits = BatchLimits(config)
        self.client = self._make_client()

    # ------------------------------------------------------------------ MQTT
    def _make_client(self):
        config = self.config
        v5 = config.mqtt_protocol == "5"
        kwargs = {} if v5 else {"clean_session": False}
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            manual_ack=True,
            **kwargs,
        )
        if config.mqtt_username:
            client.username_pw_set(config.mqtt_username, config.mqtt_password or None)
        if config.mqtt_tls:
            client.tls_set()
        # outgoing window (dead-letter publishes) and no local cap on queued publishes
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _connect_kwargs(self):
        config = self.config
        if config.mqtt_protocol != "5":
            return {}
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = config.mqtt_session_expiry
        properties.ReceiveMaximum = config.mqtt_receive_maximum
        return {"clean_start": False, "properties": properties}

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            _logger.error("MQTT broker %s:%s refused the connection: %s",
                          self.config.mqtt_host, self.config.mqtt_port, reason_code)
            return
        with self._ack_lock:
            self._generation += 1
        _logger.info("connected to MQTT broker %s:%s as %r (session present: %s)", self.config.mqtt_host,
                     self.config.mqtt_port, self.config.client_id, flags.session_present)
        client.subscribe([(topic, 1) for topic in self.config.subscriptions()])
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        failed = [code for code in reason_codes if code.is_failure]
        if failed:
            _logger.error("the broker refused the subscriptions %s: %s", self.config.subscriptions(), failed)
        else:
            _logger.info("subscribed to %s (QoS 1)", ", ".join(self.config.subscriptions()))

    def _on_connect_fail(self, client, userdata):
        _logger.error("cannot reach MQTT broker at %s:%s; retrying", self.config.mqtt_host, self.config.mqtt_port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        with self._ack_lock:
            self._generation += 1
        self.connected.clear()
        if not self.stopping.is_set():
            _logger.warning("lost the MQTT broker %s:%s (%s); reconnecting",
                            self.config.mqtt_host, self.config.mqtt_port, reason_code)

    def _on_message(self, client, userdata, message):
        # Network thread: enqueue and return.
        self.inbox.put((self._generation, message.mid, message.qos, message.topic, message.payload, time.time()))

    def _ack(self, acks):
        with self._ack_lock:
            for generation, mid, qos in acks:
                # A message of a previous connection will be redelivered: do not
                # ack its mid on the new connection, where it means another message.
                if qos and generation == self._generation:
                    self.client.ack(mid, qos)

    # ------------------------------------------------------------------ Odoo
    def _send(self, method, items):
        """One API call; returns follow-up calls (events Odoo refused go to api_reject)."""
        model, name, kwargs = METHODS[method]
        result = self.odoo.execute(model, name, items, **kwargs)
        self.stats.calls += 1
        rejected = result.get("rejected") or []
        self.stats.forwarded += result.get("accepted", 0)
        self.stats.duplicates += result.get("duplicates", 0)
        if method == "reject":
            self.stats.rejected += len(items)
            return []
        self.stats.rejected += len(rejected)
        if method == "events" and rejected:
            # api_post_events does not store what it refuses: keep it as a rejected reading
            return [("reject", [
                reject_item(self._topic(items[r["index"]], "events"), json.dumps(items[r["index"]]), r["reason"])
                for r in rejected
            ])]
        return []

    def _topic(self, item, kind):
        identifier = item.get("identifier") if isinstance(item, dict) else None
        return "%siot/%s/%s" % (self.config.prefix, identifier, kind)

    def _odoo_down(self, error):
        if not self._odoo_down_logged or isinstance(error, OdooAuthError):
            _logger.error("%s; spooling to %s and retrying with backoff", error, self.spool.path)
            self._odoo_down_logged = True
        self._next_retry = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, self.config.retry_max)

    def _odoo_up(self):
        if self._odoo_down_logged:
            _logger.info("Odoo reachable again")
        self._odoo_down_logged = False
        self._retry_delay = self.config.retry_initial
        self._next_retry = 0.0

    # ------------------------------------------------------------------ batches
    def _flush(self, batch):
        if not batch.acks and not len(batch):
            return
        calls = list(batch.calls())
        if not self.spool:  # Odoo was fine last time: talk to it directly
            while calls:
                method, items = calls[0]
                try:
                    calls[1:1] = self._send(method, items)
                except OdooUnavailable as error:
                    self._odoo_down(error)
                    break
                except OdooError as error:
                    _logger.warning("Odoo refused a %s call of %d entries: %s; spooled for retry",
                                    method, len(items), error)
                    self._spool_put(method, items, batch.first, attempts=1, last_error=str(error))
                    calls.pop(0)
                    continue
                calls.pop(0)
            else:
                self._odoo_up()
        for method, items in calls:
            self._spool_put(method, items, batch.first)
        if not calls and batch.first:
            self.stats.lag = time.time() - batch.first
        self._ack(batch.acks)

    def _spool_put(self, method, items, received, **kwargs):
        while True:
            try:
                self.spool.put(method, items, received, **kwargs)
                self.stats.spooled += len(items)
                return
            except SpoolFull as error:
                # Back-pressure: the messages stay unacknowledged, the broker keeps them.
                _logger.error("%s: waiting for Odoo before taking more messages", error)
                if self.stopping.is_set():
                    raise
                self._replay(wait=True)

    def _replay(self, wait=False):
        """Send spooled calls oldest first while Odoo takes them."""
        while self.spool:
            if time.monotonic() < self._next_retry:
                if not wait or self.stopping.is_set():
                    return
                time.sleep(min(0.2, self._next_retry - time.monotonic()))
                continue
            call = self.spool.head()
            try:
                followups = self._send(call["method"], call["items"])
            except OdooUnavailable as error:
                self._odoo_down(error)
                if not wait:
                    return
                continue
            except OdooError as error:
                self._app_error(call, error)
                continue
            self._odoo_up()
            for method, items in followups:
                self.spool.put(method, items, call["received"], force=True)
            self.spool.delete(call["id"])
            self.stats.lag = time.time() - call["received"]

    def _app_error(self, call, error):
        items = call["items"]
        if call["attempts"] < APP_ERROR_RETRIES:
            self.spool.failed(call["id"], error)
            return
        if len(items) > 1:
            half = len(items) // 2
            _logger.warning("Odoo keeps refusing a %s call of %d entries (%s): splitting it",
                            call["method"], len(items), error)
            self.spool.replace(call["id"], [(call["method"], items[:half], 0), (call["method"], items[half:], 0)])
            return
        if call["method"] != "reject":
            # The one entry Odoo cannot take: keep it as a rejected reading.
            kind = "usage" if call["method"] == "usage" else "events"
            item = reject_item(self._topic(items[0], kind), json.dumps(items[0]), "Odoo error: %s" % error)
            self.spool.replace(call["id"], [("reject", [item], 0)])
            return
        self._dead_letter(call, error)

    def _dead_letter(self, call, error):
        """Odoo cannot even store the rejected entry: publish it to the dead-letter topic."""
        body = json.dumps({"method": call["method"], "items": call["items"], "error": str(error)})
        info = self.client.publish(self.config.dead_letter_topic, body, qos=1)
        try:
            info.wait_for_publish(timeout=10)
        except RuntimeError:
            pass
        if info.is_published():
            _logger.error("dead-lettered %d entries to %s: %s", len(call["items"]),
                          self.config.dead_letter_topic, error)
            self.stats.dead_lettered += len(call["items"])
            self.spool.delete(call["id"])
        else:
            self.spool.failed(call["id"], error)

    # ------------------------------------------------------------------ main loop
    def log_stats(self):
        calls, entries, oldest = self.spool.stats()
        stats = self.stats
        _logger.info(
            "stats: received=%d forwarded=%d duplicates=%d rejected=%d calls=%d spooled=%d in_spool=%d "
            "dead_lettered=%d queue=%d lag=%.1fs spool_age=%.0fs",
            stats.received, stats.forwarded, stats.duplicates, stats.rejected, stats.calls, stats.spooled, entries,
            stats.dead_lettered, self.inbox.qsize(), stats.lag, time.time() - oldest if oldest else 0.0,
        )

    def start(self):
        config = self.config
        _logger.info("iot_bridge: MQTT %s:%s (v%s, client id %r, topics %s) -> Odoo %s db %r, spool %s",
                     config.mqtt_host, config.mqtt_port, config.mqtt_protocol, config.client_id,
                     ", ".join(config.subscriptions()), config.odoo_url, config.odoo_db, self.spool.path)
        self._check_odoo()
        self.client.connect_async(config.mqtt_host, config.mqtt_port, config.mqtt_keepalive,
                                  **self._connect_kwargs())
        self.client.loop_start()

    def _check_odoo(self):
        """Log in now rather than at the first message, so a wrong key or URL shows at once."""
        try:
            self.odoo.authenticate()
        except OdooUnavailable as error:  # keep running: the spool and the broker hold the data
            _logger.error("%s", error)
            self._next_auth = time.monotonic() + self._auth_delay
            self._auth_delay = min(self._auth_delay * 2, self.config.retry_max)
        else:
            _logger.info("logged in to Odoo %s database %r as %r (uid %s)", self.config.odoo_url,
                         self.config.odoo_db, self.config.odoo_login, self.odoo.uid)

    def run(self):
        """Worker loop until ``stop()``; flushes the pending batch before returning."""
        config = self.config
        batch = _Batch()
        next_stats = time.monotonic() + config.stats_interval
        while not self.stopping.is_set():
            timeout = config.batch_max_delay if batch.started is None else max(
                0.0, batch.started + config.batch_max_delay - time.monotonic())
            if batch.started is not None:
                timeout = min(timeout, config.batch_idle_flush)
            idle = False
            try:
                generation, mid, qos, topic, payload, received = self.inbox.get(timeout=min(timeout, 0.5))
            except queue.Empty:
                idle = True
            else:
                self.stats.received += 1
                parsed = parse_message(topic, payload, config.prefix, config.max_payload_bytes)
                batch.usage += parsed.usage
                batch.events += parsed.events
                batch.rejects += parsed.rejects
                batch.acks.append((generation, mid, qos))
                batch.first = batch.first or received
                batch.started = batch.started or time.monotonic()
            if batch.acks and (idle or self.limits.full(len(batch), len(batch.acks), self.inbox.qsize())
                               or time.monotonic() - batch.started >= config.batch_max_delay):
                self._flush(batch)
                batch = _Batch()
            if self.spool and time.monotonic() >= self._next_retry:
                self._replay()
            if self.odoo.uid is None and time.monotonic() >= self._next_auth:
                self._check_odoo()
            if time.monotonic() >= next_stats:
                self.log_stats()
                next_stats = time.monotonic() + config.stats_interval
        # Stopping: what is pending goes to Odoo or the spool, then is acknowledged.
        try:
            self._flush(batch)
        except SpoolFull:
            _logger.warning("spool full at shutdown: %d messages left unacknowledged for redelivery",
                            len(batch.acks))
        self.log_stats()

    def stop(self):
        self.stopping.set()

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
        self.spool.close()
