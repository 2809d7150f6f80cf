"""Sending a prepared request: TLS always verified, safe retries, and a hard limit on time and memory.

A socket timeout bounds each read, not the call: a server that trickles one byte a second never trips it,
and urllib3 would sleep as long as a ``Retry-After`` header asks. So every call here runs under a
``budget``: a watchdog shuts the call's socket when the budget ends, whatever the call is doing
(connecting, sending, waiting for headers, reading the body), and retries and ``Retry-After`` sleep only
inside it. The body is read up to ``max_body`` bytes; the rest is never read.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import ConnectionPool, HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from access_auditor.errors import RequestError

_active = threading.local()  # the budget of the call this thread is making


class Budget:
    """The time one call may take. ``with Budget(s):`` arms a watchdog for the calling thread's call."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def watch(self, connection: HTTPConnection) -> None:
        with self._lock:
            if self.expired:
                raise ConnectTimeoutError(connection, "the call's time budget is spent")
            self._connections.append(connection)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self._connections)
        for connection in connections:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                # The plain socket's shutdown, also under TLS: it wakes a read blocked in any layer.
                with contextlib.suppress(OSError, TypeError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> Budget:
        _active.budget = self
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        _active.budget = None


def _current() -> Budget | None:
    return getattr(_active, "budget", None)


class _Watched:
    """Mixed into urllib3's connections: each one a call uses is handed to that call's budget."""

    def connect(self) -> None:
        budget = _current()
        if budget is not None:
            budget.watch(self)  # type: ignore[arg-type]
        super().connect()  # type: ignore[misc]

    def request(self, *args: Any, **kwargs: Any) -> None:
        budget = _current()
        if budget is not None:
            budget.watch(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _BudgetRetry(Retry):
    """urllib3's retries, but no sleep (backoff or ``Retry-After``) outlives the call's budget: a server
    that asks for more time than is left gets its answer returned as it is, at once."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        budget = _current()
        if response is not None and budget is not None:
            wait = super().get_retry_after(response)
            if wait is not None and wait >= budget.remaining() and _pool is not None:
                raise MaxRetryError(
                    _pool, url or "", ResponseError("Retry-After asks for more than the budget")
                )
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        budget = _current()
        return value if value is None or budget is None else min(value, budget.remaining())

    def get_backoff_time(self) -> float:
        budget = _current()
        value = float(super().get_backoff_time())
        return value if budget is None else min(value, budget.remaining())


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def new_session(retries: int = 2) -> requests.Session:
    """A session that reuses connections and retries only what is safe: connection failures, and for
    idempotent methods 429/502/503/504 (honouring Retry-After within the call's budget). Never a POST that
    may have arrived."""
    session = requests.Session()
    retry = _BudgetRetry(
        total=retries,
        connect=retries,
        read=1,
        status=retries,
        allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
        status_forcelist=frozenset({429, 502, 503, 504}),
        backoff_factor=0.2,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    adapter = _Adapter(max_retries=retry, pool_maxsize=32)  # one per audit worker at most (audit.MAX_WORKERS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read within the budget. ``truncated``: the body went on past ``max_body``."""

    status_code: int
    reason: str
    headers: CaseInsensitiveDict[str]
    content: bytes
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout: tuple[float, float],
    budget_s: float | None = None,
    max_body: int | None = None,
) -> Reply:
    """Send exactly ``method url headers body`` (the URL is not re-encoded) and read the answer.

    ``timeout`` is (connect, per-read) in seconds; the whole call, retries included, ends after
    ``budget_s`` (default: their sum). Raises RequestError with kind ``timeout``, ``dns``, ``tls`` or
    ``connection``.
    """
    total = budget_s if budget_s is not None else timeout[0] + timeout[1]
    if total <= 0:
        raise RequestError("timeout", "no time was left for the call")
    prepared = session.prepare_request(
        requests.Request(method, url, headers=dict(headers or {}), data=body or None)
    )
    prepared.url = url  # exactly what was signed; requests' own quoting must not touch it
    host = urlsplit(url).netloc
    with Budget(total) as budget:
        try:
            per_op = (min(timeout[0], total), min(timeout[1], total))
            response = session.send(prepared, timeout=per_op, verify=True, allow_redirects=False, stream=True)
            try:
                content, truncated = _read(response, max_body)
            finally:
                response.close()  # unread bytes are never drained: the connection is dropped instead
        except requests.exceptions.SSLError as exc:
            raise RequestError("tls", f"TLS failure talking to {host}: {_root(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            if budget.expired or _timed_out(exc):
                raise RequestError("timeout", f"no complete answer from {host} within {total:g}s") from exc
            text = _root(exc)
            dns = re.search(r"Name or service not known|getaddrinfo|NameResolution|nodename", text)
            raise RequestError(
                "dns" if dns else "connection", f"could not connect to {host}: {text}"
            ) from exc
        if budget.expired:
            raise RequestError("timeout", f"no complete answer from {host} within {total:g}s")
    return Reply(response.status_code, response.reason or "", response.headers, content, truncated)


def _read(response: requests.Response, max_body: int | None) -> tuple[bytes, bool]:
    if max_body is None:
        return response.content, False
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=min(max_body + 1, 65536)):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_body:
            return b"".join(chunks)[:max_body], True
    return b"".join(chunks), False


def _timed_out(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(
            seen, NewConnectionError
        ):  # urllib3 derives it from ConnectTimeoutError: refused, not slow
            return False
        if isinstance(seen, ReadTimeoutError | ConnectTimeoutError | socket.timeout | TimeoutError):
            return True
        reason = getattr(seen, "reason", None)
        seen = reason if isinstance(reason, BaseException) else (seen.__cause__ or seen.__context__)
    return isinstance(exc, requests.exceptions.Timeout)


def _root(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return str(exc) or type(exc).__name__
