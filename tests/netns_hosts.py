"""Several hosts on this one machine, for the tests and benchmarks of a cluster.

A host is a network namespace of its own (its own ports and addresses, reached from here over a
veth pair) with a hostname of its own (a UTS namespace), in which Odoo runs with a configuration
of its own, as on a machine of its own. PostgreSQL is the cluster's one database server, reached
through its unix socket (a file, so reachable from every namespace: ``db_host`` empty).
Needs root and iproute2 (``ip netns``); nothing here is pytest's, so benchmarks use it too.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# One port for every host: each namespace has ports of its own.
HTTP_PORT = 8270


def namespaces_problem():
    """Why hosts cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add); running as uid %d" % os.geteuid()
    for program in ("ip", "unshare"):
        if not shutil.which(program):
            return "%s not found: install iproute2 and util-linux" % program
    probe = "iot-probe-%s" % uuid.uuid4().hex[:6]
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if result.returncode:
        return "ip netns add failed: %s" % result.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args, namespace=None):
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    subprocess.run(prefix + ["ip", *args], check=True, capture_output=True, text=True)


class NamespaceHost:
    """One host: ``create()`` makes its namespace, veth pair and addresses, ``destroy()`` ends
    whatever still runs in it and removes them (safe to call on a host half made)."""

    def __init__(self, label):
        tag = uuid.uuid4().hex[:6]
        self.name = "iot-%s-%s" % (label, tag)  # the namespace's name and the host's hostname
        self._outer, self._inner = "ivh%s%s" % (tag, label[:1]), "ivn%s%s" % (tag, label[:1])
        # A /30 of 10.224.0.0/12 of its own: runs beside each other never share one.
        block = int(tag, 16) % (1 << 18)
        base = (10 << 24) | (224 << 16) | (block << 2)
        self._outer_address, self.address = _dotted(base + 1), _dotted(base + 2)
        self.created = False

    def create(self):
        self.created = True
        _ip("netns", "add", self.name)
        _ip("link", "add", self._outer, "type", "veth", "peer", "name", self._inner)
        _ip("link", "set", self._inner, "netns", self.name)
        _ip("addr", "add", self._outer_address + "/30", "dev", self._outer)
        _ip("link", "set", self._outer, "up")
        _ip("addr", "add", self.address + "/30", "dev", self._inner, namespace=self.name)
        _ip("link", "set", self._inner, "up", namespace=self.name)
        _ip("link", "set", "lo", "up", namespace=self.name)
        return self

    def popen(self, command, **kwargs):
        """Start ``command`` on this host; its pid is the command's own (every step execs)."""
        hosted = ["ip", "netns", "exec", self.name, "unshare", "--uts",
                  "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *command]
        return subprocess.Popen(hosted, **kwargs)

    def pids(self):
        if not self.created:
            return []
        result = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True)
        return [int(pid) for pid in result.stdout.split()]

    def destroy(self):
        if not self.created:
            return
        for pid in self.pids():  # only what was started here: the namespace is this object's
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "link", "del", self._outer], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        self.created = False


def _dotted(number):
    return ".".join(str((number >> shift) & 255) for shift in (24, 16, 8, 0))


class HostedOdoo:
    """Odoo on a host, with its own configuration file (in ``workdir``): Odoo's default limits,
    ``workers`` HTTP worker processes (0: threaded), ``cron_threads`` cron workers, the
    database through PostgreSQL's unix socket, the checkout's filestore (one for the cluster).

    ``program``: how to run Odoo's command line (prefork needs a script, bench/odoo_launcher.py).
    """

    def __init__(self, host, db, workdir, workers=0, cron_threads=1, program=(sys.executable, "-m", "odoo"),
                 log_level="warn"):
        self.host, self.db, self.workers, self.cron_threads, self.program = host, db, workers, cron_threads, program
        self.log_level = log_level
        self.url = "http://%s:%d" % (host.address, HTTP_PORT)
        self.conf_path = os.path.join(workdir, "odoo-%s.conf" % host.name)
        self.log_path = os.path.join(workdir, "odoo-%s.log" % host.name)
        self.process = None

    def write_conf(self):
        options = {
            "addons_path": os.path.join(ROOT, "addons"),
            "data_dir": os.path.join(ROOT, ".odoo-data"),
            "db_host": "",  # the unix socket
            "db_user": "root",
            "db_name": self.db,
            "dbfilter": "^%s$" % self.db,
            "list_db": "False",
            "http_interface": self.host.address,
            "http_port": HTTP_PORT,
            "gevent_port": HTTP_PORT + 1,
            "workers": self.workers,
            "max_cron_threads": self.cron_threads,
            "log_level": self.log_level,
            "logfile": self.log_path,
        }
        with open(self.conf_path, "w") as handle:
            handle.write("[options]\n" + "".join("%s = %s\n" % item for item in options.items()))

    def start(self, timeout=180):
        self.write_conf()
        self.process = self.host.popen([*self.program, "-c", self.conf_path], cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() > deadline:
                raise AssertionError("Odoo on %s did not answer in %ss; see %s" % (self.url, timeout, self.log_path))
            time.sleep(0.3)
        return self

    def _ready(self):
        assert self.process.poll() is None, "Odoo on %s exited; see %s" % (self.host.name, self.log_path)
        try:
            return requests.post(self.url + "/web/webclient/version_info", json={}, timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self, timeout=30):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
