"""Long cron work as a series of short committed transactions, under Odoo's time limits.

Billing runs, the daily usage valuation, the invoice detail files and dunning share this
driver: each calls ``CommittedSteps.run`` with a function doing one unit of its work, and
the driver owns what is the same for all of them: the time budget, the commit after each
unit (a crash loses at most the unit under way), the retry of a unit that met a concurrent
transaction (Odoo's own list of such errors, deadlocks included), Odoo 18's progress API
and the re-trigger of the crons when work is left.
"""

import enum
import resource
import threading
import time

import psycopg2

from odoo import fields
from odoo.modules import module as odoo_module
from odoo.service.model import PG_CONCURRENCY_ERRORS_TO_RETRY
from odoo.tools import config

# A call stops starting units when less than this many seconds of Odoo's limits would be
# left after one more (plus twice the longest unit it has seen).
LIMIT_MARGIN = 15
# How long a prefork cron worker may sleep between its watchdog ping and its jobs: Odoo's
# SLEEP_INTERVAL plus the "chorus effect" of up to 9 s (odoo/service/server.py WorkerCron.sleep).
CRON_WORKER_SLEEP = 60 + 10


class Outcome(enum.StrEnum):
    """What one unit of work did."""

    # Work was done: it is committed.
    DONE = "done"
    # Work is left, but another transaction holds it: rolled back, looked at again later.
    WAIT = "wait"
    # A concurrent transaction committed the same rows first: rolled back, looked at again at once.
    RETRY = "retry"
    # Nothing is left to do.
    FINISHED = "finished"


def is_concurrency_error(error):
    """Whether ``error`` is one Odoo retries (serialization failure, lock not available, deadlock):
    another transaction changed or holds the rows; nothing is wrong with the data."""
    return isinstance(error, psycopg2.Error) and error.pgcode in PG_CONCURRENCY_ERRORS_TO_RETRY


def can_commit():
    """Whether this transaction may be committed: not inside a test, whose transaction Odoo
    rolls back at its end (as ``account.move.send._can_commit``)."""
    return not odoo_module.current_test


def prefork_limit_start(previous_job_end, now):
    """When the watchdog of a prefork cron worker started counting the jobs it runs now.

    A prefork cron worker pings Odoo's watchdog, sleeps (up to ``CRON_WORKER_SLEEP``,
    less when a trigger wakes it), then runs every ready job of a database in a row, all
    under one ``limit_time_real`` counted from that ping: from the end of its previous
    jobs (``previous_job_end``) if that is recent enough to be it, else that long ago.
    """
    earliest = now - CRON_WORKER_SLEEP
    return previous_job_end if previous_job_end and previous_job_end >= earliest else earliest


class CronSeries:
    """What the calls of one series share: Odoo calls a cron that reports work left up to ten
    times in a row (``ir_cron.MAX_BATCH_PER_CRON_JOB``) on one cursor, under one time limit."""

    __slots__ = ("done", "longest", "started")

    def __init__(self, started):
        self.started = started
        self.done = 0
        self.longest = 0.0

    @classmethod
    def of(cls, cr):
        """The series of the cron job running on ``cr`` (the cursor is what the ten calls share)."""
        series = getattr(cr, "_iot_cron_series", None)
        if series is None:
            series = cr._iot_cron_series = cls(time.time())
        return series


class CronBudget:
    """How much of Odoo's time limits a cron call has left.

    All calls of a series run under one ``limit_time_real`` (and, with workers, one
    ``limit_time_cpu``), counted from the first of them: the threaded server's thread start;
    with workers, the worker's watchdog ping before the jobs it runs in a row, noted by
    ``ir.cron._process_job``; else the series' first call.
    """

    def __init__(self, cr):
        thread = threading.current_thread()
        self.series = CronSeries.of(cr)
        thread_start = getattr(thread, "start_time", None) or getattr(thread, "iot_limit_start", None)
        self.started = thread_start or self.series.started
        cron_limit = config.get("limit_time_real_cron") or 0
        self.limit_real = cron_limit if cron_limit > 0 else (config.get("limit_time_real") or 0)

    def note(self, seconds):
        """Remember how long a unit took: the longest of the whole series counts (a later
        call of the ten has seen none yet)."""
        self.series.longest = max(seconds, self.series.longest)

    def allows(self, longest_unit):
        """Note ``longest_unit``, then tell whether one more unit still fits (``fits``)."""
        self.note(longest_unit)
        return self.fits()

    def fits(self, at_least=0.0):
        """Whether one more unit as long as the series' longest (or ``at_least``) still fits,
        with a margin: twice that, plus ``LIMIT_MARGIN`` seconds."""
        needed = 2 * max(self.series.longest, at_least) + LIMIT_MARGIN
        if self.limit_real > 0 and time.time() - self.started + needed > self.limit_real:
            return False
        soft_cpu, _hard = resource.getrlimit(resource.RLIMIT_CPU)
        if soft_cpu != resource.RLIM_INFINITY:
            usage = resource.getrusage(resource.RUSAGE_SELF)
            if usage.ru_utime + usage.ru_stime + needed > soft_cpu:
                return False
        return True

    def add_done(self, count):
        """Count ``count`` units done by this call; return those of the whole series."""
        self.series.done += count
        return self.series.done


class CommittedSteps:
    """Drive one cron call: units of work, each committed, while the time budget allows.

    ``crons``: the ``ir.cron`` records to wake when work is left. ``wait_seconds``: how long
    a call waits, a second at a time, while every unit left is held by another transaction.
    ``retry_errors``: exception classes that also mean "another worker did it first".
    In a test, where commits are forbidden, each unit runs in a savepoint instead: released
    where the cron would commit, rolled back where it would roll back.
    """

    def __init__(self, env, crons=None, wait_seconds=0, retry_errors=()):
        self.env = env
        self.crons = crons
        self.wait_seconds = wait_seconds
        self.retry_errors = tuple(retry_errors)
        if not can_commit():
            # A test's cursor outlives many cron calls (a whole test class): each call is a series.
            env.cr._iot_cron_series = None
        self.budget = CronBudget(env.cr)
        self.done = 0
        self.commits = 0
        self._savepoint = None

    def run(self, unit, on_failure=None):
        """Call ``unit()`` (which returns an ``Outcome``) until it finishes or the budget ends.

        ``on_failure(error)``: called after the rollback of a unit that raised an error
        which is not a concurrency error; it records the failure (its writes are committed)
        and returns the outcome. Without it, such an error is raised. Returns the units done.
        """
        self._commit()  # a fresh snapshot for the first unit
        waited = 0
        while self.budget.fits(self.wait_seconds):
            started = time.monotonic()
            outcome = self._attempt(unit, on_failure)
            if outcome is Outcome.FINISHED:
                break
            if outcome is Outcome.WAIT:
                if waited >= self.wait_seconds:
                    break
                time.sleep(1)
                waited += 1
            elif outcome is Outcome.DONE:
                self.done += 1
                self.budget.note(time.monotonic() - started)
        return self.done

    def _attempt(self, unit, on_failure):
        self._begin()
        try:
            outcome = Outcome(unit())
        except Exception as error:
            self._rollback()
            if is_concurrency_error(error) or isinstance(error, self.retry_errors):
                return Outcome.RETRY
            if on_failure is None or isinstance(error, psycopg2.OperationalError):
                raise  # the connection or the server is gone: a later call resumes
            self._begin()
            outcome = Outcome(on_failure(error))
            self._commit()
            return outcome
        if outcome is Outcome.DONE:
            self._commit()
        else:
            self._rollback()
        return outcome

    def report(self, remaining):
        """Report the series' progress to Odoo and wake the crons while work is left.

        A call that found its time spent reports the work of the calls before it, so that
        Odoo does not take the job for finished. Odoo re-runs a cron with work left ten
        times, then leaves it ready without waking any worker (they would find it at their
        next poll, up to a minute later): triggered at once. A series that moved nothing
        is ended by Odoo as if all were done: triggered again in a minute.
        """
        done = self.budget.add_done(self.done)
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        if remaining and self.crons:
            at = None if done else fields.Datetime.add(fields.Datetime.now(), minutes=1)
            for cron in self.crons:
                cron._trigger(at)

    # Transactions: commit and roll back, or their savepoint stand-ins in a test.
    def _begin(self):
        if not can_commit():
            self._savepoint = self.env.cr.savepoint(flush=False)

    def _commit(self):
        self.commits += 1
        self.env.flush_all()
        if can_commit():
            self.env.cr.commit()
        elif self._savepoint is not None:
            self._savepoint.close(rollback=False)
            self._savepoint = None
        self.env.invalidate_all()

    def _rollback(self):
        if can_commit():
            self.env.cr.rollback()
        elif self._savepoint is not None:
            self._savepoint.close(rollback=True)
            self._savepoint = None
        self.env.invalidate_all()

