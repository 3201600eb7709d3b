import hashlib
import json

from odoo import api, fields, models
from odoo.addons.iot_device.tools import check_batch, storable_text
from odoo.exceptions import UserError

from .iot_usage import SOURCES

# A payload the bridge could not read carries no message id; its id is derived
# from what was received, so that a redelivery (after a bridge crash, before the
# broker got its acknowledgement) is recognised: prefix + sha256 of topic and text.
DERIVED_ID_PREFIX = "sha256:"


class IotUsageReject(models.Model):
    """Input refused at ingestion, kept as received with the reason, until re-processed.

    Separate from the readings (``iot.usage``): a refused entry reserves nothing
    there, so a corrected re-send under the same message id is accepted (and
    marks its reject as re-processed).
    """

    _name = "iot.usage.reject"
    _description = "IoT Rejected Reading"
    _order = "received_at desc, id desc"
    _rec_name = "reason"
    _check_company_auto = True
    # As the readings: no create/write user and date (what arrived when is received_at).
    _log_access = False

    company_id = fields.Many2one("res.company", required=True, default=lambda self: self.env.company)
    device_id = fields.Many2one(
        "iot_billing.device", check_company=True, ondelete="set null", help="The device, when it was known."
    )
    identifier = fields.Char(help="Device identifier as received.")
    metric_code = fields.Char(help="Metric code as received.")
    message_id = fields.Char(
        string="Message ID",
        help="As received; for a payload that could not be read, derived from its topic and bytes.",
    )
    raw_input = fields.Text(help="The entry exactly as received.")
    reason = fields.Char(required=True)
    source = fields.Selection(SOURCES, required=True, default="api")
    received_at = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    state = fields.Selection(
        [("open", "Open"), ("reprocessed", "Re-processed")],
        required=True,
        default="open",
        help="Re-processed: the entry, re-processed or re-sent corrected under the same message "
        "id, is now stored as a reading.",
    )
    reprocessed_at = fields.Datetime(readonly=True)

    def init(self):
        # One open reject per (company, identifier as received, message id): a refused
        # entry re-sent is kept once. Entries without a message id are all kept.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS iot_usage_reject_open_message_uniq
                ON iot_usage_reject (company_id, coalesce(identifier, ''), message_id)
             WHERE state = 'open' AND message_id IS NOT NULL
            """
        )

    # ------------------------------------------------------------------
    # Storing what ingestion refused
    # ------------------------------------------------------------------
    @api.model
    def _store(self, rejected, source):
        """Keep every refused entry with what was received and why: ``rejected`` is a list of
        ``(entry, device or None, reason)``. An open reject re-sent is stored once.

        Raw SQL (as the readings' insert): set-based, ON CONFLICT DO NOTHING makes a
        re-sent batch safe. Access was checked by the caller (ingestion API).
        """
        rows = []
        for entry, device, reason in rejected:
            entry_dict = entry if isinstance(entry, dict) else {}
            rows.append((
                device.id if device else None,
                device.company_id.id if device else self.env.company.id,
                _as_text(entry_dict.get("identifier"), 128),
                _as_text(entry_dict.get("metric"), 64),
                _as_text(entry_dict.get("message_id"), 255),
                _raw_text(entry),
                reason[:255],
            ))
        return self._insert(rows, source)

    @api.model
    def _insert(self, rows, source):
        """Insert ``(device_id, company_id, identifier, metric_code, message_id, raw_input,
        reason)`` tuples; return how many were new."""
        if not rows:
            return 0
        self.flush_model()
        self.env.cr.execute(
            """
            INSERT INTO iot_usage_reject (
                device_id, company_id, identifier, metric_code, message_id, raw_input, reason,
                source, state, received_at)
            SELECT row.device_id, row.company_id, row.identifier, row.metric_code, row.message_id,
                   row.raw_input, row.reason, %(source)s, 'open', %(now)s
              FROM unnest(%(device_ids)s::int[], %(company_ids)s::int[], %(identifiers)s::varchar[],
                          %(metric_codes)s::varchar[], %(message_ids)s::varchar[],
                          %(raw_inputs)s::text[], %(reasons)s::varchar[])
                   AS row(device_id, company_id, identifier, metric_code, message_id, raw_input, reason)
            ON CONFLICT DO NOTHING
            """,
            {
                "source": source if source in dict(SOURCES) else "api",
                "now": fields.Datetime.now(),
                **{key: [row[position] for row in rows] for position, key in enumerate((
                    "device_ids", "company_ids", "identifiers", "metric_codes", "message_ids",
                    "raw_inputs", "reasons",
                ))},
            },
        )
        inserted = self.env.cr.rowcount
        self.invalidate_model()
        return inserted

    @api.model
    def _supersede(self, readings):
        """Open rejects of entries now stored as readings (a corrected re-send under the same
        message id) are re-processed. ``readings``: dicts with company_id, identifier and
        message_id, as ingestion parsed them."""
        if not readings:
            return 0
        self.flush_model(["state", "reprocessed_at"])
        self.env.cr.execute(
            """
            UPDATE iot_usage_reject reject
               SET state = 'reprocessed', reprocessed_at = %(now)s
              FROM unnest(%(company_ids)s::int[], %(identifiers)s::varchar[], %(message_ids)s::varchar[])
                   AS stored(company_id, identifier, message_id)
             WHERE reject.state = 'open' AND reject.message_id IS NOT NULL
               AND reject.company_id = stored.company_id
               AND coalesce(reject.identifier, '') = stored.identifier
               AND reject.message_id = stored.message_id
            """,
            {
                "now": fields.Datetime.now(),
                "company_ids": [reading["company_id"] for reading in readings],
                "identifiers": [reading["identifier"] for reading in readings],
                "message_ids": [reading["message_id"] for reading in readings],
            },
        )
        count = self.env.cr.rowcount
        self.invalidate_model(["state", "reprocessed_at"])
        return count

    @api.model
    def api_reject(self, items, source="mqtt"):
        """Store payloads that could not even be read as entries (not JSON, not UTF-8).

        ``items``: list of ``{"topic", "raw", "reason"}``. Each gets a message id derived
        from its topic and its text (the bridge's text is a deterministic function of the
        payload's bytes: UTF-8, else base64), so a redelivered payload is stored once.
        Returns ``{"stored": n, "duplicates": n}``.
        """
        check_batch(items)
        self.env["iot.usage"].check_access("create")
        rows = []
        for item in items:
            item = item if isinstance(item, dict) else {"raw": item}
            topic = _as_text(item.get("topic"), 255) or ""
            raw = _raw_text(item.get("raw"))
            parts = topic.split("/")
            reason = (_as_text(item.get("reason"), 200) or "unreadable payload") + (
                " (topic %s)" % topic if topic else ""
            )
            rows.append((
                None,
                self.env.company.id,
                parts[-2][:128] if len(parts) >= 3 else None,
                None,
                derived_message_id(topic, raw),
                raw,
                reason[:255],
            ))
        stored = self._insert(rows, source)
        return {"stored": stored, "duplicates": len(rows) - stored}

    # ------------------------------------------------------------------
    # Re-processing
    # ------------------------------------------------------------------
    def action_reprocess(self):
        """Run open rejects through ingestion again, e.g. after the device was registered.

        Those that pass become readings and their reject is marked re-processed; the
        others stay open with the new reason. Nothing is deleted.
        """
        rejects = self.filtered(lambda reject: reject.state == "open")
        if not rejects:
            raise UserError(self.env._("Select open rejected readings to re-process."))
        entries = []
        for reject in rejects:
            try:
                entry = json.loads(reject.raw_input or "")
            except ValueError:
                continue  # not JSON (an unreadable MQTT payload): stays as it is
            if isinstance(entry, dict):
                entries.append((reject, entry))
        # The rejects already hold what is still refused: ingestion does not store it again.
        Usage = self.env["iot.usage"].with_context(iot_usage_reprocessing=True)
        resolved = self.browse()
        for company, group in _group_by_company(entries):
            result = Usage.with_company(company).api_ingest([entry for _reject, entry in group], source="import")
            reasons = {item["index"]: item["reason"] for item in result["rejected"]}
            for position, (reject, _entry) in enumerate(group):
                if position in reasons:
                    reject.reason = reasons[position][:255]
                else:
                    resolved |= reject
        resolved.filtered(lambda reject: reject.state == "open").write(
            {"state": "reprocessed", "reprocessed_at": fields.Datetime.now()}
        )
        message = self.env._(
            "%(ok)s readings re-processed, %(bad)s still rejected.",
            ok=len(resolved),
            bad=len(rejects) - len(resolved),
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {"message": message, "type": "info", "next": {"type": "ir.actions.act_window_close"}},
        }


def derived_message_id(topic, raw_text):
    digest = hashlib.sha256()
    digest.update((topic or "").encode("utf-8", "backslashreplace"))
    digest.update(b"\x00")
    digest.update((raw_text or "").encode("utf-8", "backslashreplace"))
    return DERIVED_ID_PREFIX + digest.hexdigest()


def _group_by_company(entries):
    groups = {}
    for reject, entry in entries:
        groups.setdefault(reject.company_id, []).append((reject, entry))
    return groups.items()


def _as_text(value, limit):
    return storable_text(value, limit)


def _raw_text(entry):
    """The received entry as text, whatever it was; JSON when it can be."""
    if isinstance(entry, str):
        return storable_text(entry)
    try:
        return storable_text(json.dumps(entry, default=str, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return storable_text(repr(entry)[:100000])
    except (ValueError, RecursionError):  # a 5,000-digit integer, nesting too deep
        return "<unprintable %s>" % type(entry).__name__
