"""A misbehaving upstream on loopback, for the fault matrix: each path prefix is one way an endpoint can
fail an auditor. ``http://127.0.0.1:PORT/<fault>/...`` answers as that fault does, to any method.

  ok               200 with a small JSON body
  locked           200 to a signed call, 403 Missing Authentication Token to an unsigned one
  trickle-body     200 headers, then the body one byte every half second, for ever
  trickle-headers  the status line and headers one byte every half second, for ever
  hang             accepts the connection and never answers
  huge             500 with a 200 MB body, generated as it is sent (never held in memory here)
  echo             500 whose body repeats the request's headers, credentials included
  retry-after      503 with Retry-After: 3600
  redirect         302 to /ok/after-redirect on the same host
  redirect-away    302 to the same server under another host name (localhost)
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HUGE_BYTES = 200 * 1024 * 1024


class FaultyUpstream:
    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, fault: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{fault}"

    def __enter__(self) -> FaultyUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        fault = self.path.split("/")[1]
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            getattr(self, "_" + fault.replace("-", "_"), self._ok)()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def _ok(self) -> None:
        self._send(200, b'{"status": "ok"}')

    def _locked(self) -> None:
        if self.headers.get("Authorization"):
            return self._ok()
        self._send(403, b'{"message": "Missing Authentication Token"}')

    def _trickle_body(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        while True:
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.5)

    def _trickle_headers(self) -> None:
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.5)

    def _hang(self) -> None:
        time.sleep(3600)

    def _huge(self) -> None:
        self.send_response(500)
        self.send_header("Content-Length", str(HUGE_BYTES))
        self.end_headers()
        chunk = b'{"message": "' + b"e" * (1024 * 1024 - 14) + b'"}\n'
        for _ in range(HUGE_BYTES // len(chunk)):
            self.wfile.write(chunk)
        self.wfile.write(b" " * (HUGE_BYTES % len(chunk)))

    def _echo(self) -> None:
        echoed = {
            "message": f"upstream failed on {self.command} {self.path}",
            "request": dict(self.headers.items()),
        }
        self._send(500, json.dumps(echoed).encode())

    def _redirect(self) -> None:
        self._send(302, b"", Location="/ok/after-redirect")

    def _redirect_away(self) -> None:
        port = self.connection.getsockname()[1]
        self._send(302, b"", Location=f"http://localhost:{port}/ok/elsewhere")

    def _retry_after(self) -> None:
        self._send(503, b'{"message": "Service Unavailable"}', Retry_After="3600")
