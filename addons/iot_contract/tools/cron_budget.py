import resource
import threading
import time

from odoo.tools import config

# A cron call stops starting chunks when less than this many seconds of Odoo's limits
# would be left after one more (plus twice the longest chunk it has seen).
LIMIT_MARGIN = 15
# How long a prefork cron worker may sleep between its watchdog ping and its jobs: Odoo's
# SLEEP_INTERVAL plus the "chorus effect" of up to 9 s (odoo/service/server.py WorkerCron.sleep).
CRON_WORKER_SLEEP = 60 + 10


def prefork_limit_start(previous_job_end, now):
    """When the watchdog of a prefork cron worker started counting the jobs it runs now.

    A prefork cron worker pings Odoo's watchdog, sleeps (up to ``CRON_WORKER_SLEEP``,
    less when a trigger wakes it), then runs every ready job of a database in a row, all
    under one ``limit_time_real`` counted from that ping: from the end of its previous
    jobs (``previous_job_end``) if that is recent enough to be it, else that long ago.
    """
    earliest = now - CRON_WORKER_SLEEP
    return previous_job_end if previous_job_end and previous_job_end >= earliest else earliest


class CronBudget:
    """How much of Odoo's time limits a cron call has left.

    Odoo calls a cron that reports work left up to ten times in a row in one worker
    (``ir_cron.MAX_BATCH_PER_CRON_JOB``), all under one ``limit_time_real`` (and, with
    workers, one ``limit_time_cpu``): the budget counts from the first of these calls
    (the threaded server's thread start; with workers, the worker's watchdog ping before
    the jobs it runs in a row, noted by ``ir.cron._process_job``; else the job cursor,
    shared by the ten).
    """

    def __init__(self, cr):
        thread = threading.current_thread()
        thread_start = getattr(thread, "start_time", None) or getattr(thread, "iot_limit_start", None)
        if not getattr(cr, "_iot_cron_started", None):
            cr._iot_cron_started = thread_start or time.time()
        self.started = thread_start or cr._iot_cron_started
        self.cr = cr
        cron_limit = config.get("limit_time_real_cron") or 0
        self.limit_real = cron_limit if cron_limit > 0 else (config.get("limit_time_real") or 0)

    def allows(self, longest_chunk):
        # The longest chunk of the whole series: a later call of the ten has seen none yet.
        longest_chunk = max(longest_chunk, getattr(self.cr, "_iot_cron_longest", 0.0))
        self.cr._iot_cron_longest = longest_chunk
        needed = 2 * longest_chunk + LIMIT_MARGIN
        if self.limit_real > 0 and time.time() - self.started + needed > self.limit_real:
            return False
        soft_cpu, _hard = resource.getrlimit(resource.RLIMIT_CPU)
        if soft_cpu != resource.RLIM_INFINITY:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            if usage.ru_utime + usage.ru_stime + needed > soft_cpu:
                return False
        return True

    def add_done(self, count):
        """Count ``count`` units of work done by this call; return those of the whole series."""
        self.cr._iot_cron_done = getattr(self.cr, "_iot_cron_done", 0) + count
        return self.cr._iot_cron_done
