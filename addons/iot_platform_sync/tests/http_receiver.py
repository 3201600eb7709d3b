"""A real HTTP server on a free local port, run in a thread by the tests: it records what it
receives and answers with the statuses and bodies it is given."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.received = []  # (method, path, query, headers, body bytes)
        self.statuses = []  # answered in turn; then 200
        self.pages = {}  # GET answers by the 'since' parameter
        self.server = None

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self, body):
                url = urlparse(self.path)
                receiver.received.append((self.command, url.path, parse_qs(url.query), dict(self.headers), body))

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._record(body)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"refused")

            def do_GET(self):  # noqa: N802
                self._record(b"")
                since = parse_qs(urlparse(self.path).query).get("since", [""])[0]
                answer = receiver.pages.get(since)
                if answer is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
