"""Webhook deliveries as Stripe makes them: signed, every attempt recorded, retried, resendable.

Like `stripe listen --forward-to URL`, every event the fake Stripe emits is POSTed to the
endpoint, signed with its `whsec_...` secret (the `Stripe-Signature` header, as
docs.stripe.com/webhooks/signature describes it). Unlike `stripe listen`, and like
Stripe's own delivery, each attempt is recorded (when, the HTTP status or the network
error, the start of the answer, how long it took), a failed one is retried with back-off,
and the Dashboard's "Resend" is `redeliver(event_id)`.

Stripe's schedule (docs.stripe.com/webhooks, "Retry behavior"): in live mode it retries
"for up to three days with an exponential back off"; in a sandbox (test mode) "three
times over a few hours". Stripe does not publish the intervals, so TEST_MODE_RETRIES and
LIVE_MODE_RETRIES are ours, within those words. Times are the service's clock, so
`sandbox clock advance 1h` brings a retry due. Deliveries run on a few threads: Stripe
delivers concurrently and does not promise an order.
"""

import heapq
import http.client
import itertools
import logging
import threading
import time
from urllib.parse import urlsplit

from fakes.stripe.events import sign_webhook

logger = logging.getLogger(__name__)

# Seconds after each failed attempt before the next one.
TEST_MODE_RETRIES = (5 * 60, 30 * 60, 2 * 3600)  # three retries over ~2.6 hours
# live mode: doubling from a minute for ten retries (~17 hours), then two a day apart (~2.7 days)
LIVE_MODE_RETRIES = (*(60 * 2**n for n in range(10)), 24 * 3600, 24 * 3600)
SCHEDULES = {"test": TEST_MODE_RETRIES, "live": LIVE_MODE_RETRIES}
ANSWER_KEPT = 300  # characters of the endpoint's answer kept per attempt
TIMEOUT = 10.0  # seconds an endpoint has to answer (Stripe's own timeout is not published)


def parse_schedule(text):
    """'test', 'live' or seconds separated by commas ('0.5,1,2'); a tuple of floats."""
    if text in SCHEDULES:
        return SCHEDULES[text]
    try:
        delays = tuple(float(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"retry schedule {text!r}: 'test', 'live' or seconds like 1,5,30"
        ) from None
    if any(delay < 0 for delay in delays):
        raise ValueError("retry delays are seconds, 0 or more")
    return delays


class Delivery:
    """One event's deliveries to the endpoint."""

    __slots__ = ("attempts", "event_id", "next_at", "status", "type")

    def __init__(self, event_id, type, status="pending", attempts=None, next_at=None):
        self.event_id, self.type, self.status = event_id, type, status
        self.attempts = attempts if attempts is not None else []  # (at, status, answer, ms, manual)
        self.next_at = next_at

    def automatic_attempts(self):
        return sum(1 for attempt in self.attempts if not attempt[4])

    def as_tuple(self):
        return (self.event_id, self.type, self.status, list(self.attempts), self.next_at)

    @classmethod
    def from_tuple(cls, data):
        return cls(*data)

    def as_json(self):
        return {
            "event": self.event_id,
            "type": self.type,
            "status": self.status,
            "next_attempt_at": self.next_at,
            "attempts": [
                {
                    "at": at,
                    "status": status if isinstance(status, int) else None,
                    "error": None if isinstance(status, int) else status,
                    "answer": answer,
                    "duration_ms": ms,
                    "manual": manual,
                }
                for at, status, answer, ms, manual in self.attempts
            ],
        }


HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks) sandbox",
}


def http_post(url, payload, signature, session):
    """POST with a requests.Session (any URL requests takes)."""
    response = session.post(
        url, data=payload, headers={**HEADERS, "Stripe-Signature": signature}, timeout=TIMEOUT
    )
    return response.status_code, response.text[:ANSWER_KEPT]


class Connection:
    """One delivery thread's keep-alive connection to the endpoint (http.client: a few
    times cheaper per POST than requests, and deliveries are most of the service's work
    while a backend takes payments)."""

    def __init__(self):
        self.target, self.connection = None, None

    def post(self, url, payload, signature):
        parts = urlsplit(url)
        target = (parts.scheme, parts.hostname, parts.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            if self.connection is None or self.target != target:
                self.close()
                kind = (
                    http.client.HTTPSConnection
                    if parts.scheme == "https"
                    else http.client.HTTPConnection
                )
                self.connection, self.target = (
                    kind(parts.hostname, parts.port, timeout=TIMEOUT),
                    target,
                )
            try:
                self.connection.request(
                    "POST", path, payload, {**HEADERS, "Stripe-Signature": signature}
                )
                response = self.connection.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()  # a kept-alive connection the server had closed: once more
                if attempt == 2:
                    raise
                continue
            except Exception:
                self.close()
                raise
            if response.will_close:
                self.close()
            return response.status, body[: ANSWER_KEPT * 4].decode("utf-8", "replace")[:ANSWER_KEPT]
        raise RuntimeError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
        self.connection = None


class Deliveries:
    """The deliveries of every event, and the threads making them.

    `service` provides: `lock` (held for every change), `clock.now()`, `endpoint`
    ({"url", "secret", "enabled_events"}), `event_payload(event_id)` (the event's JSON
    text, or None), `delivered(event_id)` and `commit_deliveries(records)` (journal them).
    `target(url, payload, signature) -> (status, answer)` replaces the HTTP POST (tests).
    """

    def __init__(self, service, retry_delays=TEST_MODE_RETRIES, workers=4, target=None):
        self.service = service
        self.retry_delays = tuple(retry_delays)
        self.records = {}
        self.counts = {"pending": 0, "delivered": 0, "failed": 0}
        self._target = target
        self._heap = []  # (due, sequence, event id, manual)
        self._sequence = itertools.count()
        self._condition = threading.Condition(threading.Lock())
        self._stopping = False
        self._busy = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"webhooks-{n}", daemon=True)
            for n in range(workers)
        ]
        self._local = threading.local()

    def start(self):
        for thread in self._threads:
            thread.start()

    def stop(self, timeout=5):
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(deadline - time.monotonic(), 0.01))

    # --------------------------------------------------------- under the service lock
    def wanted(self, event_type):
        endpoint = self.service.endpoint
        if not endpoint.get("url"):
            return False
        enabled = endpoint.get("enabled_events") or ["*"]
        return "*" in enabled or event_type in enabled

    def add(self, events):
        """New events (id, type): records for those the endpoint wants; returns them."""
        now = self.service.clock.now()
        added = []
        for event_id, event_type in events:
            if event_id in self.records or not self.wanted(event_type):
                continue
            record = Delivery(event_id, event_type, next_at=now)
            self._set(record)
            added.append(record)
        if added:
            with self._condition:
                for record in added:
                    self._push(record.next_at, record.event_id, False)
                self._condition.notify(len(added))
        return added

    def redeliver(self, event_id, event_type):
        """An attempt now, whatever happened before (the Dashboard's Resend)."""
        record = self.records.get(event_id)
        if record is None:
            record = Delivery(event_id, event_type, status="pending")
            self._set(record)
        with self._condition:
            self._push(self.service.clock.now(), event_id, True)
            self._condition.notify()
        return record

    def retry_pending(self):
        """Every pending delivery falls due now, its retry count unchanged (the endpoint is
        up again: `sandbox serve` asks once the backend answers, so what failed while it
        was starting does not wait for its next retry, hours away in Stripe's schedule)."""
        now = self.service.clock.now()
        due = [r for r in self.records.values() if r.status == "pending" and r.next_at is not None]
        with self._condition:
            for record in due:
                record.next_at = now
                self._push(now, record.event_id, False)
            self._condition.notify_all()
        return due

    def load(self, record):
        self._set(record)
        if record.status == "pending" and record.next_at is not None:
            with self._condition:
                self._push(record.next_at, record.event_id, False)

    def clear(self):
        self.records = {}
        self.counts = dict.fromkeys(self.counts, 0)
        with self._condition:
            self._heap.clear()

    def _set(self, record, status=None):
        old = self.records.get(record.event_id)
        if old is not None:
            self.counts[old.status] -= 1
        if status is not None:
            record.status = status
        self.records[record.event_id] = record
        self.counts[record.status] += 1

    def _push(self, due, event_id, manual):
        heapq.heappush(self._heap, (due, next(self._sequence), event_id, manual))

    def wake(self):
        """The clock moved: look again at what is due."""
        with self._condition:
            self._condition.notify_all()

    def wait_idle(self, timeout=10):
        """True once nothing is due now and nothing is in flight (retries later don't count)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._condition:
                now = self.service.clock.now()
                if not self._busy and not (self._heap and self._heap[0][0] <= now):
                    return True
            time.sleep(0.01)
        return False

    # --------------------------------------------------------------- the threads
    def _post(self, url, payload, signature):
        if self._target is not None:
            return self._target(url, payload, signature)
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = Connection()
        return connection.post(url, payload, signature)

    def _next(self):
        with self._condition:
            while not self._stopping:
                now = self.service.clock.now()
                if self._heap and self._heap[0][0] <= now:
                    _, _, event_id, manual = heapq.heappop(self._heap)
                    self._busy += 1
                    return event_id, manual
                wait = min(self._heap[0][0] - now, 1.0) if self._heap else 1.0
                self._condition.wait(max(wait, 0.001))
            return None, None

    def _work(self):
        while True:
            event_id, manual = self._next()
            if event_id is None:
                return
            try:
                self._attempt(event_id, manual)
            except Exception:  # a delivery thread must survive anything
                logger.exception("webhook delivery of %s", event_id)
            finally:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify_all()

    def _attempt(self, event_id, manual):
        service = self.service
        with service.lock:
            record = self.records.get(event_id)
            if record is None or (not manual and record.status != "pending"):
                return  # delivered meanwhile, or reset
            if not manual and record.next_at is not None and record.next_at > service.clock.now():
                return  # a stale entry: a later retry is scheduled
            payload = service.event_payload(event_id)
            url, secret = service.endpoint.get("url"), service.endpoint.get("secret")
        if payload is None or not url:
            return
        payload = payload.encode() if isinstance(payload, str) else payload
        started = time.monotonic()
        try:
            status, answer = self._post(url, payload, sign_webhook(payload, secret))
        except Exception as error:  # a down endpoint is retried, not fatal
            status, answer = f"{type(error).__name__}: {error}"[:ANSWER_KEPT], ""
        elapsed = round((time.monotonic() - started) * 1000, 1)
        ok = isinstance(status, int) and 200 <= status < 300
        with service.lock:
            record = self.records.get(event_id)
            if record is None:
                return  # reset while we were posting
            now = service.clock.now()
            record.attempts.append((now, status, answer, elapsed, manual))
            if ok:
                record.next_at = None
                self._set(record, "delivered")
                service.delivered(event_id)
            elif manual:
                if record.status == "pending" and record.next_at is None:
                    self._set(record, "failed")  # a resend that failed, and nothing scheduled
                # else: the automatic schedule goes on as it was
            else:
                made = record.automatic_attempts()
                if made <= len(self.retry_delays):
                    record.next_at = now + self.retry_delays[made - 1]
                    with self._condition:
                        self._push(record.next_at, event_id, False)
                else:
                    record.next_at = None
                    self._set(record, "failed")
                    logger.warning(
                        "webhook %s: giving up after %d attempts (%s)", event_id, made, status
                    )
            service.commit_deliveries([record])
        if not ok:
            logger.warning("webhook %s to %s: %s", event_id, url, status)
