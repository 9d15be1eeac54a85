"""Webhook forwarding, as `stripe listen --forward-to` does: every event the fake emits is
POSTed, signed with the webhook secret, to an endpoint, from a background thread, and
retried with back-off until it is acknowledged with a 2xx.

A target is any `target(payload, signature) -> HTTP status`: `http_target(url)` posts to
a loopback URL; a backend may hand in its own (one that calls its webhook endpoint in
process, say).
"""

import heapq
import itertools
import json
import logging
import os
import threading
import time
from urllib.parse import urlsplit

import requests

from fakes.netguard import is_loopback
from fakes.stripe.events import sign_webhook

logger = logging.getLogger(__name__)

# Seconds before each retry; Stripe itself retries for days, `stripe listen` not at all.
RETRY_DELAYS = (0.5, 1, 2, 4, 8, 15, 30, 60)


def http_target(url, timeout=10):
    host = urlsplit(url).hostname
    if not is_loopback(host):
        raise ValueError(f"the sandbox forwards webhooks to loopback only, not {host}")
    session = requests.Session()  # our own: never the provider session the fakes mount on

    def post(payload, signature):
        response = session.post(
            url,
            data=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            timeout=timeout,
        )
        return response.status_code

    post.description = url
    post.close = session.close
    return post


class WebhookForwarder:
    """Deliver events to `target(payload, signature) -> HTTP status`, asynchronously."""

    def __init__(self, target, secret, retry_delays=RETRY_DELAYS, on_delivered=None):
        self.target, self.secret = target, secret
        self.retry_delays = tuple(retry_delays)
        self.on_delivered = on_delivered  # called with the event id after a 2xx
        self.delivered = []  # event ids, in delivery order
        self.failed = []  # (event id, last status or error) given up on
        self.attempts = 0
        self._queue = []  # heap of (due, sequence, event JSON, attempt)
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._busy = 0
        self._thread = None
        self._pid = None
        self._stopping = False

    # --------------------------------------------------------------- public
    def enqueue(self, events):
        with self._condition:
            for event in events:
                payload = json.dumps(event)  # the event as it is now, like Stripe's snapshot
                heapq.heappush(self._queue, (time.monotonic(), next(self._sequence), payload, 0))
            self._ensure_thread()
            self._condition.notify()

    def wait_idle(self, timeout=10):
        """Block until nothing is queued or in flight (retries waiting count); True if so."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(min(left, 0.05))
        return True

    def stop(self):
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        close = getattr(self.target, "close", None)
        if close is not None:
            close()

    # ------------------------------------------------------------- the thread
    def _ensure_thread(self):
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._stopping = False
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._loop, name="webhook-forwarder", daemon=True
            )
            self._thread.start()

    def _loop(self):
        while True:
            with self._condition:
                while not self._stopping:
                    if self._queue and self._queue[0][0] <= time.monotonic():
                        break
                    wait = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._condition.wait(wait)
                if self._stopping:
                    return
                _, _, payload, attempt = heapq.heappop(self._queue)
                self._busy += 1
            try:
                self._deliver(payload, attempt)
            finally:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify_all()

    def _deliver(self, payload, attempt):
        event_id = json.loads(payload)["id"]
        self.attempts += 1
        try:
            status = self.target(payload.encode(), sign_webhook(payload, self.secret))
        except Exception as error:  # a down endpoint is retried, not fatal
            status = f"{type(error).__name__}: {error}"
        if isinstance(status, int) and 200 <= status < 300:
            self.delivered.append(event_id)
            if self.on_delivered is not None:
                try:
                    self.on_delivered(event_id)
                except Exception:
                    logger.exception("webhook forwarding: recording %s as delivered", event_id)
            return
        if attempt < len(self.retry_delays):
            delay = self.retry_delays[attempt]
            logger.warning(
                "webhook %s to %s: %s; retrying in %ss",
                event_id,
                getattr(self.target, "description", "target"),
                status,
                delay,
            )
            with self._condition:
                heapq.heappush(
                    self._queue,
                    (time.monotonic() + delay, next(self._sequence), payload, attempt + 1),
                )
        else:
            logger.error(
                "webhook %s: giving up after %s attempts (%s)", event_id, attempt + 1, status
            )
            self.failed.append((event_id, status))
