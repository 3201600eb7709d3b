"""Usage statistics pulled from a device platform's HTTP API (the seeds' "billing requests
statistics from the platform", e.g. cameras recording per organization per day), stored as
readings through the ingestion API, so they are bucketed, valued and billed like readings.

The platform answers ``GET <url>?since=<cursor>`` with
``{"statistics": [{"identifier", "metric", "quantity", "timestamp", "id"}], "cursor": "...",
"more": false}``. One page is stored with the cursor it advances to in one transaction: a pull
that crashes stores nothing and starts again from the same cursor, and a statistic sent twice
(the same ``id``, or the same metric and timestamp without one) counts once.
"""

import logging
from datetime import timedelta

import requests

from odoo import api, fields, models
from odoo.exceptions import UserError

_logger = logging.getLogger(__name__)

PAGE_LIMIT = 10000  # the ingestion API's batch limit


class IotStatisticsSource(models.Model):
    _name = "iot.statistics.source"
    _description = "IoT Usage Statistics Source"
    _order = "company_id, name"

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one("res.company", required=True, index=True, default=lambda self: self.env.company)
    url = fields.Char(string="URL", required=True)
    auth_header = fields.Char(
        string="Authorization Header",
        groups="iot_device.group_iot_manager",
        help="Sent as the Authorization header, e.g. 'Bearer <token>'.",
    )
    interval_minutes = fields.Integer(string="Every (minutes)", default=1440, required=True)
    timeout = fields.Integer(string="Timeout (s)", default=30, required=True)
    next_pull_at = fields.Datetime(default=fields.Datetime.now, required=True, index=True)
    cursor = fields.Char(readonly=True, copy=False, help="Where the next pull starts, as the platform returned it.")
    last_pull_at = fields.Datetime(readonly=True, copy=False)
    last_result = fields.Char(readonly=True, copy=False)
    last_error = fields.Text(readonly=True, copy=False)
    accepted_count = fields.Integer(string="Statistics Stored", readonly=True, copy=False)

    _sql_constraints = [
        ("interval_positive", "CHECK (interval_minutes > 0)", "The pull interval must be positive."),
        ("timeout_positive", "CHECK (timeout > 0)", "The timeout must be positive."),
    ]

    def action_pull_now(self):
        for source in self:
            outcome = source._pull_page()
            if outcome.get("error"):
                raise UserError(outcome["error"])

    def _pull_page(self):
        """Fetch one page and store it with its cursor; ``{"accepted", "duplicates", "rejected",
        "more"}`` or ``{"error"}`` (kept on the source, nothing stored)."""
        self.ensure_one()
        source = self.sudo()
        headers = {"Accept": "application/json"}
        if source.auth_header:
            headers["Authorization"] = source.auth_header
        now = fields.Datetime.now()
        try:
            response = requests.get(source.url, params={"since": source.cursor or ""}, headers=headers,
                                    timeout=source.timeout)
            response.raise_for_status()
            page = response.json()
            statistics, cursor = self._check_page(page)
        except (requests.RequestException, ValueError) as exc:
            error = "%s: %s" % (type(exc).__name__, exc)
            source.write({"last_pull_at": now, "last_error": error,
                          "next_pull_at": now + timedelta(minutes=min(source.interval_minutes, 15))})
            _logger.info("statistics pull %s failed: %s", source.name, error)
            return {"error": error}
        readings = [self._reading(statistic) for statistic in statistics]
        answer = self.env["iot.usage"].sudo().with_company(source.company_id).api_ingest(readings) if readings else {
            "accepted": 0, "duplicates": 0, "rejected": []}
        more = bool(page.get("more")) and bool(readings)
        source.write({
            "cursor": cursor if cursor is not None else source.cursor,
            "last_pull_at": now,
            "last_error": False,
            "last_result": "%d stored, %d already stored, %d rejected" % (
                answer["accepted"], answer["duplicates"], len(answer["rejected"])),
            "accepted_count": source.accepted_count + answer["accepted"],
            "next_pull_at": now if more else now + timedelta(minutes=source.interval_minutes),
        })
        return dict(answer, more=more)

    @staticmethod
    def _check_page(page):
        if not isinstance(page, dict) or not isinstance(page.get("statistics"), list):
            raise ValueError("the platform's answer must be an object with a 'statistics' list")
        if len(page["statistics"]) > PAGE_LIMIT:
            raise ValueError("a page holds at most %d statistics, got %d" % (PAGE_LIMIT, len(page["statistics"])))
        cursor = page.get("cursor")
        if cursor is not None and not isinstance(cursor, (str, int)):
            raise ValueError("'cursor' must be a string")
        return page["statistics"], None if cursor is None else str(cursor)

    def _reading(self, statistic):
        """A statistic as a reading; an entry that is not an object is passed on for the
        ingestion API to reject with its reason (kept among the rejected readings)."""
        if not isinstance(statistic, dict):
            return statistic
        key = statistic.get("id")
        if key in (None, ""):
            key = "%s@%s" % (statistic.get("metric"), statistic.get("timestamp"))
        return {
            "identifier": statistic.get("identifier"),
            "metric": statistic.get("metric"),
            "quantity": statistic.get("quantity"),
            "timestamp": statistic.get("timestamp"),
            "message_id": "stat:%d:%s" % (self.id, key),
            "payload": {"statistics_source": self.name},
        }

    @api.model
    def _cron_pull_due(self):
        due = self.search([("next_pull_at", "<=", fields.Datetime.now())], order="next_pull_at, id")
        more = False
        for source in due:
            try:
                with self.env.cr.savepoint():
                    outcome = source._pull_page()
            except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
                _logger.exception("statistics pull %s failed", source.name)
                source.sudo().write({"last_error": "%s: %s" % (type(exc).__name__, exc),
                                     "next_pull_at": fields.Datetime.now() + timedelta(minutes=15)})
                continue
            more = more or outcome.get("more", False)
        if more:
            self.env.ref("iot_platform_sync.iot_statistics_source_cron")._trigger()
