import datetime
import gzip
import tempfile

import psycopg2

from odoo import api, fields, models
from odoo.addons.iot_contract.tools import CommittedSteps, Outcome
from odoo.tools import SQL

from ..tools import drop_partition, ensure_partitions, lock_partition, partition_days, partition_name

# Days of partitions the rotation prepares ahead of today (readings may be up to a day
# in the future, api_input.FUTURE_TOLERANCE; a week covers a cron that did not run).
DAYS_AHEAD = 7
# The export and the drop wait at most this long for running ingestion to release the
# table, then give up until the next run rather than queue every new ingestion behind them.
DROP_LOCK_TIMEOUT = "5s"


class IotUsageArchive(models.Model):
    """A day of one company's raw readings, exported (CSV, gzip) before its partition was
    dropped at the end of the retention window: what disputes and audits can still read."""

    _name = "iot.usage.archive"
    _description = "IoT Raw Readings Export"
    _order = "day desc, company_id"
    _rec_name = "file_name"
    _check_company_auto = True

    day = fields.Date(required=True, readonly=True, help="The UTC day of the readings' timestamps.")
    company_id = fields.Many2one("res.company", required=True, readonly=True, default=lambda self: self.env.company)
    row_count = fields.Integer(readonly=True, help="Readings in the file.")
    attachment_id = fields.Many2one("ir.attachment", readonly=True, ondelete="restrict")
    file = fields.Binary(related="attachment_id.datas", string="CSV (gzip)")
    file_name = fields.Char(readonly=True)
    file_size = fields.Integer(related="attachment_id.file_size", string="Size (bytes)")

    _sql_constraints = [
        ("day_company_unique", "unique(day, company_id)", "A day of a company is exported once."),
    ]

    @api.model
    def _cron_rotate_partitions(self):
        """Prepare the next days' partitions; export and drop the partitions past retention.

        One partition per committed step (``CommittedSteps``), each step a transaction of its
        own that begins by locking its partition (``_archive_and_drop``). A partition whose
        lock is not granted in time waits for the next call; the progress API and the
        re-trigger run the cron again while partitions remain.
        """
        today = fields.Date.context_today(self)
        ensure_partitions(self.env.cr, [today + datetime.timedelta(days=offset) for offset in range(DAYS_AHEAD + 1)],
                          separately=True)
        due = self._days_past_retention(today)
        steps = CommittedSteps(self.env, crons=self.env.ref("iot_usage.iot_usage_rotate_partitions_cron").sudo())

        def archive_and_drop_next():
            if not due:
                return Outcome.FINISHED
            try:
                self._archive_and_drop(due[0])
            except psycopg2.errors.LockNotAvailable:
                return Outcome.WAIT  # ingestion holds the day's table: the next call tries again
            due.pop(0)
            return Outcome.DONE

        steps.run(archive_and_drop_next)
        steps.report(len(due))

    @api.model
    def _days_past_retention(self, today):
        """Days whose partition is past every company's retention window, oldest first.

        Partitions are shared by the companies: a day goes when the longest window ends,
        so a company's window is the least it keeps (README, Storage).
        """
        companies = self.env["res.company"].sudo().with_context(active_test=False).search([])
        longest = max(companies.mapped("iot_usage_raw_retention_days") or [0])
        cutoff = today - datetime.timedelta(days=longest)
        return [day for day in partition_days(self.env.cr) if day < cutoff]

    @api.model
    def _archive_and_drop(self, day):
        """Export the day's readings of each company that asks for it, then drop the partition.
        Returns the exports created.

        Call it first in a transaction (``CommittedSteps`` begins each step with a fresh one):
        the partition is locked against inserts before anything is read (``lock_partition``),
        so that the export holds every reading the drop removes, a late reading committed
        by another connection meanwhile included.
        """
        cr = self.env.cr
        self.env["iot.usage"].flush_model()
        lock_partition(cr, day, DROP_LOCK_TIMEOUT)
        table = SQL.identifier(partition_name(day))
        counts = dict(self.env.execute_query(SQL(
            "SELECT company_id, count(*) FROM %s GROUP BY company_id", table,
        )))
        companies = self.env["res.company"].sudo().browse(list(counts)).filtered("iot_usage_raw_export")
        archives = self.sudo().browse()
        for company in companies:
            archives |= self.sudo()._export(day, company, counts[company.id])
        cr.execute(SQL("SET LOCAL lock_timeout = %s", DROP_LOCK_TIMEOUT))
        drop_partition(cr, day)
        cr.execute(SQL("SET LOCAL lock_timeout = DEFAULT"))
        kept_from = self.env["iot.usage"]._raw_kept_from()
        first_kept = day + datetime.timedelta(days=1)
        if not kept_from or first_kept > kept_from:
            self.env["ir.config_parameter"].sudo().set_param("iot_usage.raw_kept_from", first_kept.isoformat())
        self.env["iot.usage"].invalidate_model()
        return archives

    @api.model
    def _export(self, day, company, row_count):
        """One company's readings of ``day`` as a gzip-compressed CSV attachment.

        COPY streams the rows into a temporary file through gzip (a day of a large
        fleet does not fit in memory as Python objects). A day already exported for the
        company (a late reading re-created its partition after the drop, README, Raw
        readings) gets its new rows appended to the same file, as one more gzip member
        without the header: the file still reads as one CSV."""
        archive = self.search([("day", "=", day), ("company_id", "=", company.id)])
        query = self.env.cr.mogrify(SQL(
            """
            COPY (
                SELECT usage.id, usage.timestamp, device.identifier AS device, metric.code AS metric,
                       usage.quantity, usage.message_id, usage.source, usage.received_at, usage.payload
                  FROM %s usage
                  LEFT JOIN iot_billing_device device ON device.id = usage.device_id
                  LEFT JOIN iot_usage_metric metric ON metric.id = usage.metric_id
                 WHERE usage.company_id = %s
                 ORDER BY usage.timestamp, usage.id
            ) TO STDOUT WITH (FORMAT csv%s)
            """,
            SQL.identifier(partition_name(day)), company.id, SQL(", HEADER") if not archive else SQL(),
        )).decode()
        file_name = "iot_usage_%s_%s.csv.gz" % (day.isoformat(), company.id)
        with tempfile.TemporaryFile() as spool:
            # mtime=0: the same rows give the same bytes (an export can be checked against a copy).
            with gzip.GzipFile(fileobj=spool, mode="wb", mtime=0) as compressed:
                self.env.cr.copy_expert(query, compressed)
            spool.seek(0)
            content = spool.read()
        if archive:
            archive.row_count += row_count
            archive.attachment_id.raw = archive.attachment_id.raw + content
            return archive
        archive = self.create({"day": day, "company_id": company.id, "row_count": row_count, "file_name": file_name})
        archive.attachment_id = self.env["ir.attachment"].create({
            "name": file_name,
            "raw": content,
            "mimetype": "application/gzip",
            "res_model": self._name,
            "res_id": archive.id,
            "company_id": company.id,
        })
        return archive
