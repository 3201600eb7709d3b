import threading
import time

from odoo import models

from ..tools import prefork_limit_start


class IrCron(models.Model):
    _inherit = "ir.cron"

    @classmethod
    def _process_job(cls, db, cron_cr, job):
        """Note, for ``CronBudget``, when the time limit of the jobs a prefork cron worker runs
        now started counting: its watchdog counts every job of one poll, and the sleep before."""
        thread = threading.current_thread()
        if getattr(thread, "start_time", None) is None:  # the threaded server sets it per poll
            if getattr(cron_cr, "_iot_limit_start", None) is None:  # first job of this poll
                cron_cr._iot_limit_start = prefork_limit_start(getattr(thread, "iot_last_job_end", None), time.time())
            thread.iot_limit_start = cron_cr._iot_limit_start
        try:
            return super()._process_job(db, cron_cr, job)
        finally:
            thread.iot_last_job_end = time.time()
            thread.iot_limit_start = None
