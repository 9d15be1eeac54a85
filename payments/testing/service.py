"""The reliability journeys against the sandbox service, over HTTP.

The ledger invariant and the scenario driver read "the fake Stripe" through a few calls
(`all()`, `events`, `charges`, `settle_refunds()`, `faults.add()`). `ServiceStripe`
answers them from a running sandbox service's control API, so the same journeys run
with the backend reaching Stripe over HTTP exactly as in sandbox mode:

    class ScenarioDriverOverHTTPTests(SandboxServiceMixin, ScenarioDriverTests):
        pass  # every journey of ScenarioDriverTests, on the service

The scenario driver scripts its faults through `script()`: "fault the n-th Stripe call
of this request" becomes a control-API fault on that call's endpoint, letting the
earlier calls to the same endpoint through (`after`).
"""

import contextlib

import requests
import stripe

from fakes.service import start_service
from fakes.stripe import stripe_globals

TEST_KEY = "sk_test_service_journeys"


class NoSleepRequestsClient(stripe.RequestsClient):
    """stripe-python over real HTTP, its retries without waiting out the back-off."""

    def _sleep_time_seconds(self, num_retries):
        return 0


class _Faults:
    def __init__(self, owner):
        self.owner = owner

    def add(self, endpoint, kind, times=1, after=0):
        method, _, path = endpoint.partition(" ")
        if endpoint == "*":
            method = path = "*"
        self.owner.control(
            "POST",
            "faults",
            {
                "service": "stripe",
                "method": method,
                "path": path,
                "kind": kind,
                "times": times,
                "after": after,
            },
        )

    def clear(self):
        self.owner.control("POST", "faults/clear", {"service": "stripe"})


class ServiceStripe:
    """A running sandbox service's Stripe, read the way the ledger and the driver read an
    engine."""

    def __init__(self, url, password=None):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        if password:
            self.http.headers["Authorization"] = f"Bearer {password}"
        self.faults = _Faults(self)

    def control(self, method, path, body=None, **params):
        answer = self.http.request(
            method, f"{self.url}/control/{path}", json=body, params=params or None, timeout=30
        )
        if answer.status_code >= 400:
            raise AssertionError(
                f"control {method} {path}: {answer.status_code} {answer.text[:300]}"
            )
        return answer.json()

    def close(self):
        self.http.close()

    # ------------------------------------------------------------ as an engine
    def all(self, object_name):
        """Every object of a type, oldest first."""
        found = self.control("GET", "stripe/objects", type=object_name, limit=1000)["data"]
        return list(reversed(found))

    @property
    def charges(self):
        return self.all("charge")

    @property
    def events(self):
        """Every event, oldest first, as Stripe sends it."""
        found = self.control("GET", "events", limit=1000, full=1)["data"]
        events = [{k: v for k, v in event.items() if k != "delivery"} for event in found]
        return list(reversed(events))

    def settle_refunds(self):
        return self.control("POST", "stripe/settle-refunds")["data"]

    def reset(self):
        self.control("POST", "reset")

    def calls_total(self):
        return self.control("GET", "calls", since=10**12)["total"]

    def calls_since(self, number):
        found = self.control("GET", "calls", since=number, service="stripe")["data"]
        return [f"{call['method']} {call['path']}" for call in found]

    @contextlib.contextmanager
    def script(self, faults):
        """What the scenario driver's CallFaults asks, over the control API: record the
        calls (a probe), or strike the n-th call of the request with a fault."""
        if faults is None:
            yield
            return
        mark = self.calls_total()
        if faults.index is not None:
            endpoint = faults.plan[faults.index]
            self.faults.add(
                endpoint, faults.kind, after=faults.plan[: faults.index].count(endpoint)
            )
        try:
            yield
        finally:
            if faults.index is not None:
                self.faults.clear()
            faults.calls = self.calls_since(mark)


class SandboxServiceMixin:
    """For TestCase classes: a sandbox service in a thread of this process (loopback, a
    free port, state in memory, no webhook forwarding: the driver delivers them itself),
    reset before every test; the stripe library talks to it over HTTP with a test key;
    `self.stripe` reads it (ServiceStripe)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sandbox = start_service()
        cls.addClassCleanup(cls.sandbox.stop)

    def setUp(self):
        super().setUp()
        self.sandbox.service.reset()
        self.stripe = ServiceStripe(self.sandbox.url)
        self.addCleanup(self.stripe.close)
        self.enterContext(
            stripe_globals(
                api_base=self.sandbox.url + "/stripe",
                api_key=TEST_KEY,
                default_http_client=NoSleepRequestsClient(timeout=10),
                max_network_retries=0,
            )
        )


WEBHOOK_SECRET = "whsec_service_journeys"


def deliver_events(test, service_stripe, since=0, secret=WEBHOOK_SECRET):
    """POST the service's events after the first `since`, signed, to the backend's webhook
    endpoint through the test client (what the service's forwarding does to a live server);
    returns how many."""
    from django.test import override_settings

    from payments.testing.webhooks import post_signed_event

    events = service_stripe.events[since:]
    with override_settings(STRIPE_WEBHOOK_SECRET=secret):
        for event in events:
            answer = post_signed_event(test.client, event, secret)
            test.assertEqual(answer.status_code, 200, answer.content)
    return len(events)
