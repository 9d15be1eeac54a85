"""The contract every fake keeps: one method, and a way to fail as a network does.

A fake is an object with

    handle(method, path, query, body, headers) -> FakeResponse

(`path` is relative to the fake's mount point, `query` the raw query string, `body`
bytes, `headers` looked up case-insensitively). It answers in its provider's wire format,
or raises TransportFault to make the transport fail. Faults are scripted per endpoint
with `FaultPlan`. The transports (fakes.transport in process, fakes.server over HTTP)
turn the same answer into what each kind of client sees.
"""

import json
import threading
from collections import deque
from dataclasses import dataclass, field


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
    """Faults for the next N calls of an endpoint ("POST /v1/charges", "*" for any, or a
    prefix ending in "*"); `after` lets that many matching calls through first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._planned = deque()  # [endpoint, kind, calls still to let through]

    def add(self, endpoint, kind, times=1, after=0):
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {sorted(FAULT_KINDS)}")
        with self._lock:
            self._planned.extend([endpoint, kind, after] for _ in range(times))

    def take(self, method, path):
        endpoint = f"{method.upper()} {path}"
        with self._lock:
            struck = None
            for index, entry in enumerate(self._planned):
                planned = entry[0]
                if planned in ("*", endpoint) or (
                    planned.endswith("*") and endpoint.startswith(planned[:-1])
                ):
                    if entry[2]:
                        entry[2] -= 1  # this call goes through
                    elif struck is None:
                        struck = index
            if struck is not None:
                kind = self._planned[struck][1]
                del self._planned[struck]
                return kind
        return None

    def planned(self):
        """[(endpoint, kind, calls let through first)] still to strike, in order."""
        with self._lock:
            return [tuple(entry) for entry in self._planned]

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
