"""Minimal JSON-RPC client for Odoo's ``/jsonrpc`` endpoint (``execute_kw``)."""

import itertools
import logging

import requests

_logger = logging.getLogger(__name__)


class OdooUnavailable(Exception):
    """Odoo cannot take the call now (network, HTTP 5xx, database down): retry later."""


class OdooAuthError(OdooUnavailable):
    """Login or rights refused: a configuration problem; the data waits in the spool."""


class OdooError(Exception):
    """Odoo answered with an application error for this call."""


# Server-side exceptions that say "not now" rather than "not this data": the database
# connection lost or refused, a concurrent transaction, a server shutting down. Any other
# database error (a constraint, a bad value) repeats with the same data: it is an
# application error, which the bridge isolates and rejects instead of retrying forever.
_TRANSIENT_ERRORS = (
    "psycopg2.OperationalError",
    "psycopg2.InterfaceError",
    "psycopg2.errors.SerializationFailure",
    "psycopg2.errors.DeadlockDetected",
    "psycopg2.errors.LockNotAvailable",
    "psycopg2.errors.QueryCanceled",
    "psycopg2.errors.AdminShutdown",
    "psycopg2.errors.CrashShutdown",
    "psycopg2.errors.CannotConnectNow",
    "psycopg2.errors.TooManyConnections",
    "psycopg2.errors.ConnectionException",
    "psycopg2.errors.ConnectionFailure",
    "psycopg2.errors.SqlclientUnableToEstablishSqlconnection",
    "odoo.exceptions.CacheMiss",
)
_AUTH_ERRORS = ("odoo.exceptions.AccessDenied", "odoo.exceptions.AccessError", "odoo.http.SessionExpiredException")


def is_transient(error_name):
    """Whether an Odoo error (its exception's dotted name) says "retry later"."""
    return error_name in _TRANSIENT_ERRORS


class OdooClient:
    def __init__(self, url, db, login, password, timeout=120.0):
        self.url = url.rstrip("/") + "/jsonrpc"
        self.db = db
        self.login = login
        self.password = password
        self.timeout = timeout
        self.uid = None
        self._ids = itertools.count(1)
        self._session = requests.Session()

    def _call(self, service, method, *args):
        body = {"jsonrpc": "2.0", "method": "call", "id": next(self._ids),
                "params": {"service": service, "method": method, "args": list(args)}}
        try:
            response = self._session.post(self.url, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise OdooUnavailable("cannot reach Odoo at %s: %s" % (self.url, error)) from None
        if response.status_code >= 400:
            raise OdooUnavailable("Odoo at %s answered HTTP %s" % (self.url, response.status_code))
        try:
            answer = response.json()
        except ValueError:
            raise OdooUnavailable(
                "Odoo at %s did not answer JSON (HTTP %s)" % (self.url, response.status_code)
            ) from None
        error = answer.get("error")
        if error:
            data = error.get("data") or {}
            name = data.get("name") or ""
            message = "%s: %s" % (name or error.get("message"), data.get("message") or error.get("message"))
            if name.startswith(_AUTH_ERRORS):
                self.uid = None
                raise OdooAuthError("Odoo refused user %r on database %r: %s" % (self.login, self.db, message))
            if is_transient(name) or "does not exist" in message and "database" in message:
                raise OdooUnavailable("Odoo database %r unavailable: %s" % (self.db, message))
            raise OdooError(message)
        return answer.get("result")

    def authenticate(self):
        uid = self._call("common", "login", self.db, self.login, self.password)
        if not uid:
            raise OdooAuthError(
                "authentication failed for login %r on database %r at %s: check odoo_login / "
                "odoo_password (API key)" % (self.login, self.db, self.url)
            )
        self.uid = uid
        return uid

    def execute(self, model, method, *args, **kwargs):
        if self.uid is None:
            self.authenticate()
        return self._call("object", "execute_kw", self.db, self.uid, self.password, model, method, list(args), kwargs)
