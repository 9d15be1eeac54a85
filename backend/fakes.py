"""Machinery shared by every fake third-party service.

A fake is an object with one method,

    handle(method, path, query, body, headers) -> FakeResponse

(`path` is relative to the fake's mount point, `query` the raw query string,
`body` bytes). The same object is reached three ways: called directly, through
`RequestsAdapter` (requests, no socket), and through `FakeServer` (real HTTP on
127.0.0.1). Faults are scripted per endpoint with `FaultPlan`.
"""

import contextlib
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

logger = logging.getLogger(__name__)


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    headers: dict = field(default_factory=dict)

    @classmethod
    def json(cls, status, payload, headers=None):
        """A JSON answer; `payload` may already be encoded (a stored answer replayed)."""
        if not isinstance(payload, bytes):
            payload = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, payload, {"Content-Type": "application/json", **(headers or {})})


class TransportFault(Exception):
    """Raised by a fake to make the transport fail the way a network does.

    kind is "timeout", "connection_error", "lost_response" (the request was
    performed, but the answer never reached the client) or "slow_response" (performed,
    and `answer` comes `delay` seconds late: after the client's timeout). In process
    slow_response is a read timeout; over HTTP the server sleeps, then answers.
    """

    def __init__(self, kind, answer=None, delay=0.0):
        super().__init__(kind)
        self.kind, self.answer, self.delay = kind, answer, delay


FAULT_KINDS = {
    "api_error",
    "rate_limit",
    "timeout",
    "connection_error",
    "lost_response",
    "slow_response",
}


class FaultPlan:
    """Faults for the next N calls of an endpoint ("POST /v1/charges", or "*" for any)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._planned = deque()

    def add(self, endpoint, kind, times=1):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {sorted(FAULT_KINDS)}")
        with self._lock:
            self._planned.extend([(endpoint, kind)] * times)

    def take(self, method, path):
        endpoint = f"{method.upper()} {path}"
        with self._lock:
            for index, (planned, kind) in enumerate(self._planned):
                if planned in ("*", endpoint) or (
                    planned.endswith("*") and endpoint.startswith(planned[:-1])
                ):
                    del self._planned[index]
                    return kind
        return None

    def before_request(self, method, path):
        """The fault planned for this call, raising the ones that strike before it runs.

        timeout and connection_error raise TransportFault here; the fake answers
        api_error and rate_limit in its own error shape, and raises lost_response
        itself once it has performed the request.
        """
        fault = self.take(method, path)
        if fault in ("timeout", "connection_error"):
            raise TransportFault(fault)
        return fault

    def clear(self):
        with self._lock:
            self._planned.clear()

    def __len__(self):
        return len(self._planned)


_UNPATCHED_SEND = requests.adapters.HTTPAdapter.send


def requests_send_patched():
    """True while something (the `responses` library) has patched requests' HTTPAdapter.send.

    `responses` intercepts requests by patching HTTPAdapter.send; an adapter mounted on
    a session is not an HTTPAdapter and would bypass it. The default test fakes check
    this and step aside, so a test's own `responses` wins, as it would in production code.
    """
    return requests.adapters.HTTPAdapter.send is not _UNPATCHED_SEND


class RequestsAdapter(BaseAdapter):
    """A requests transport adapter that answers from a fake, with no socket.

    With `defer_to_responses`, requests go to HTTPAdapter.send (that is, to `responses`)
    whenever it is patched: the per-test default fakes use this.
    """

    def __init__(self, fake, prefix, defer_to_responses=False):
        super().__init__()
        self.fake = fake
        self.prefix_path = urlsplit(prefix).path.rstrip("/")
        self.defer_to_responses = defer_to_responses

    def send(self, request, **kwargs):
        if self.defer_to_responses and requests_send_patched():
            return requests.adapters.HTTPAdapter().send(request, **kwargs)
        parts = urlsplit(request.url)
        path = parts.path[len(self.prefix_path) :] or "/"
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        try:
            answer = self.fake.handle(request.method, path, parts.query, body, request.headers)
        except TransportFault as fault:
            if fault.kind in ("timeout", "slow_response"):
                raise requests.exceptions.ReadTimeout(
                    f"fake timeout from {request.url}", request=request
                ) from None
            raise requests.exceptions.ConnectionError(
                f"fake {fault.kind.replace('_', ' ')} from {request.url}", request=request
            ) from None
        response = requests.Response()
        response.status_code = answer.status
        response._content = answer.body
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = request.url
        response.request = request
        response.reason = ""
        response.encoding = "utf-8"
        return response

    def close(self):
        pass


@contextlib.contextmanager
def mounted(session, prefix, fake):
    """Route `session`'s requests under `prefix` to `fake` for the duration."""
    previous = session.adapters.get(prefix)
    session.mount(prefix, RequestsAdapter(fake, prefix))
    try:
        yield fake
    finally:
        if previous is None:
            session.adapters.pop(prefix, None)
        else:
            session.mount(prefix, previous)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves many requests
    disable_nagle_algorithm = True  # small responses must not wait for delayed ACKs

    def _serve(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        mount, fake = self.server.route(parts.path)
        if fake is None:
            answer = FakeResponse.json(
                404,
                {"error": {"type": "invalid_request_error", "message": f"No fake at {parts.path}"}},
            )
        else:
            path = parts.path[len(mount) :] or "/"
            try:
                answer = fake.handle(self.command, path, parts.query, body, self.headers)
            except TransportFault as fault:
                if fault.kind == "slow_response" and fault.answer is not None:
                    time.sleep(fault.delay)  # the client has given up by now
                    answer = fault.answer
                else:
                    self.close_connection = True  # drop it without a word, as a dead network does
                    return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # a late answer: the client had already given up

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format, *args):
        logger.debug("fakeservices: " + format, *args)


class FakeServer(ThreadingHTTPServer):
    """Serves fakes over real HTTP on loopback, each under its own prefix."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mounts, host="127.0.0.1", port=0):
        self.mounts = {prefix.rstrip("/"): fake for prefix, fake in mounts.items()}
        self._prefixes = sorted(self.mounts, key=len, reverse=True)  # longest match wins
        super().__init__((host, port), _Handler)
        self._thread = None

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, path):
        for prefix in self._prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix, self.mounts[prefix]
        return None, None

    def start(self):
        """Serve in a daemon thread; returns self (use as a context manager to stop)."""
        # A short poll interval: stop() (shutdown) returns within 50 ms, not 500.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start() if self._thread is None else self

    def __exit__(self, *exc):
        self.stop()
