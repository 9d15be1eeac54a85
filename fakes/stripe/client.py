"""The fake Stripe beneath stripe-python: the client-library and in-process HTTP layers.

1. Client-library layer: MockToken, MockCharge, ... subclass the stripe
   resources and answer from the engine. `mock.patch('stripe.Token', MockToken)`.
2. In-process HTTP layer: `fake_stripe()` installs FakeStripeHTTPClient as the
   stripe library's HTTP client, so the library's own encoding, error mapping
   and retries run, with no socket. Context manager, decorator, or the
   FakeStripeMixin for test classes. It yields the engine.
3. Server layer: fakes.server.FakeServer serves an engine under a prefix (e.g. /stripe);
   `stripe_server(url)` points the library at it.

Which engine answers: the innermost fake_stripe(), else the default engine a test
harness set (`set_default_engine`), else the process's `shared_engine`.
"""

import contextlib
import io
import json
from urllib.parse import urlencode, urlsplit

import requests
import stripe
from requests.structures import CaseInsensitiveDict

from fakes.contract import TransportFault
from fakes.netguard import is_loopback
from fakes.stripe.engine import FakeStripe, sign_webhook
from fakes.transport import requests_send_patched

TEST_API_KEY = "sk_test_fake_stripe"

# The process-wide engine: a sandbox, MockToken and fake_stripe() share it by default.
shared_engine = FakeStripe()
_active = []
_default = []  # a test harness's per-test default engine, beneath every fake_stripe()


def current_engine():
    """The engine the stripe library talks to now: the innermost fake_stripe(), else the
    test's default engine, else the process's shared engine (sandbox mode)."""
    if _active:
        return _active[-1]
    return _default[-1] if _default else shared_engine


def set_default_engine(engine):
    """Make `engine` the default (None: no default); a test harness calls it per test."""
    _default.clear()
    if engine is not None:
        _default.append(engine)


def encode_form(params, prefix=None):
    """Stripe's form encoding, the inverse of engine.decode_form."""
    pairs = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, dict):
            pairs.append(encode_form(value, name))
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):  # objects in a list as stripe-python: a[0][x]
                if isinstance(item, dict):
                    pairs.append(encode_form(item, f"{name}[{index}]"))
                else:
                    pairs.append(urlencode({f"{name}[]": str(item)}))
        elif isinstance(value, bool):
            pairs.append(urlencode({name: "true" if value else "false"}))
        else:
            pairs.append(urlencode({name: str(value)}))
    return "&".join(p for p in pairs if p)


def connection_error(fault):
    return stripe.APIConnectionError(
        "Unexpected error communicating with Stripe. If this problem persists, let us know at "
        f"support@stripe.com.\n\n(Network error: fake {fault.kind.replace('_', ' ')})",
        should_retry=True,
    )


class FakeStripeHTTPClient(stripe.HTTPClient):
    """A stripe-python HTTP client that hands each request to the engine, no socket."""

    name = "fake_stripe"

    def __init__(self, fake=None):
        super().__init__()
        self.fake = fake or shared_engine

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        path = parts.path[parts.path.find("/v1/") :] if "/v1/" in parts.path else parts.path
        body = post_data.encode() if isinstance(post_data, str) else (post_data or b"")
        try:
            answer = self.fake.handle(method, path, parts.query, body, CaseInsensitiveDict(headers))
        except TransportFault as fault:
            raise connection_error(fault) from None
        return answer.body, answer.status, CaseInsensitiveDict(answer.headers)

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        """A streamed answer (the quote PDF) as stripe-python reads one: a file-like body."""
        body, status, answer_headers = self.request(method, url, headers, post_data)
        return io.BytesIO(body), status, answer_headers

    def close(self):
        pass

    def _sleep_time_seconds(self, num_retries):
        return 0  # the library's retries still run, without waiting out the back-off


class DefaultFakeStripeClient(FakeStripeHTTPClient):
    """The per-test default: answers from the current default engine, and steps aside
    for `responses` (requests' HTTPAdapter.send patched) so a test's own mocks win."""

    name = "default_fake_stripe"

    def __init__(self):
        stripe.HTTPClient.__init__(self)
        self._real = None

    @property
    def fake(self):
        return _default[-1] if _default else shared_engine

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        if requests_send_patched():
            if self._real is None:
                self._real = stripe.RequestsClient(timeout=10)
            return self._real.request(method, url, headers, post_data)
        return super().request(method, url, headers, post_data, _usage=_usage)

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        if requests_send_patched():
            if self._real is None:
                self._real = stripe.RequestsClient(timeout=10)
            return self._real.request_stream(method, url, headers, post_data)
        return super().request_stream(method, url, headers, post_data, _usage=_usage)


STRIPE_GLOBALS = ("api_key", "api_base", "upload_api_base", "default_http_client",
                  "max_network_retries")  # fmt: skip


@contextlib.contextmanager
def stripe_globals(**values):
    """Set the stripe module's globals for a block; all of them are restored after."""
    saved = {name: getattr(stripe, name) for name in STRIPE_GLOBALS}
    for name, value in values.items():
        setattr(stripe, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(stripe, name, value)


def stripe_server(url, api_key=TEST_API_KEY, timeout=5, max_network_retries=0):
    """Point the real stripe client at a server (e.g. a FakeServer's /stripe) for a block."""
    return stripe_globals(
        api_base=url.rstrip("/"),
        upload_api_base=url.rstrip("/"),  # POST /v1/files too (files.stripe.com otherwise)
        api_key=api_key,
        default_http_client=stripe.RequestsClient(timeout=timeout),
        max_network_retries=max_network_retries,
    )


class fake_stripe(contextlib.ContextDecorator):
    """Route the stripe library to a fresh engine for a block, test or test class.

    with fake_stripe() as stripe_engine:
        ...
        assert stripe_engine.charges[0]["amount"] == 500
    """

    def __init__(self, fake=None, api_key=TEST_API_KEY, *, stripe_mock=None, compact_json=None):
        """stripe_mock=True: the stripe-mock-compatible mode for the block (an id the engine
        never issued answers a complete object of its resource); compact_json=True: compact
        JSON answers rather than api.stripe.com's indented ones. None: the engine's own
        setting (a fresh engine: strict, indented)."""
        self._fake = fake
        self.api_key = api_key
        self.stripe_mock = stripe_mock
        self.compact_json = compact_json
        self._stacks = []

    def __enter__(self):
        fake = self._fake or shared_engine
        fake.reset()
        stack = contextlib.ExitStack()
        saved = fake.stripe_mock, fake.compact_json
        if self.stripe_mock is not None:
            fake.stripe_mock = self.stripe_mock
        if self.compact_json is not None:
            fake.compact_json = self.compact_json
        stack.callback(lambda: setattr(fake, "stripe_mock", saved[0]))
        stack.callback(lambda: setattr(fake, "compact_json", saved[1]))
        stack.enter_context(
            stripe_globals(
                default_http_client=FakeStripeHTTPClient(fake),
                api_key=self.api_key,
                api_base=stripe.DEFAULT_API_BASE,
                upload_api_base=stripe.DEFAULT_UPLOAD_API_BASE,
            )
        )
        _active.append(fake)
        stack.callback(_active.pop)
        self._stacks.append(stack)
        return fake

    def __exit__(self, *exc_info):
        self._stacks.pop().close()
        return False


class FakeStripeMixin:
    """For TestCase classes: every test runs on a fresh engine, `self.stripe`."""

    def setUp(self):
        super().setUp()
        self.stripe = self.enterContext(fake_stripe())


def is_installed():
    """A fake Stripe beneath the library (a sandbox or fake_stripe(); not a test default)."""
    client = stripe.default_http_client
    return isinstance(client, FakeStripeHTTPClient) and not isinstance(
        client, DefaultFakeStripeClient
    )


# ---------------------------------------------------------------------------
# Client-library layer
# ---------------------------------------------------------------------------
def error_for(status, payload, headers):
    """The stripe exception the library raises for this error answer (same mapping)."""
    error = payload["error"]
    message, body = error.get("message"), json.dumps(payload)
    args = (body, status, payload, headers)
    if status == 429:
        return stripe.RateLimitError(message, *args)
    if status in (400, 404):
        if error.get("type") == "idempotency_error":
            return stripe.IdempotencyError(message, *args)
        return stripe.InvalidRequestError(message, error.get("param"), error.get("code"), *args)
    if status == 401:
        return stripe.AuthenticationError(message, *args)
    if status == 402:
        return stripe.CardError(message, error.get("param"), error.get("code"), *args)
    if status == 403:
        return stripe.PermissionError(message, *args)
    return stripe.APIError(message, *args)


class EngineResource:
    """create/retrieve/list on the current engine, for stripe resource subclasses."""

    engine_path = ""

    @classmethod
    def _engine_call(
        cls, method, path, params, api_key=None, idempotency_key=None, stripe_account=None
    ):
        key = api_key or stripe.api_key or TEST_API_KEY
        headers = CaseInsensitiveDict({"Authorization": f"Bearer {key}"})
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        if stripe_account:  # as stripe-python sends `stripe_account=` (connect.py)
            headers["Stripe-Account"] = stripe_account
        form = encode_form(params)
        query, body = (form, b"") if method == "GET" else ("", form.encode())
        try:
            answer = current_engine().handle(method, path, query, body, headers)
        except TransportFault as fault:
            raise connection_error(fault) from None
        payload = json.loads(answer.body)
        if answer.status >= 400:
            raise error_for(answer.status, payload, answer.headers)
        if payload.get("object") == "list":
            return stripe.ListObject.construct_from(payload, key)
        return cls.construct_from(payload, key)

    @classmethod
    def create(cls, api_key=None, idempotency_key=None, stripe_account=None, **params):
        return cls._engine_call(
            "POST", cls.engine_path, params, api_key, idempotency_key, stripe_account
        )

    @classmethod
    def retrieve(cls, id, api_key=None, stripe_account=None, **params):
        path = f"{cls.engine_path}/{id}"
        return cls._engine_call("GET", path, params, api_key, stripe_account=stripe_account)

    @classmethod
    def list(cls, api_key=None, stripe_account=None, **params):
        return cls._engine_call(
            "GET", cls.engine_path, params, api_key, stripe_account=stripe_account
        )


class MockToken(EngineResource, stripe.Token):
    engine_path = "/v1/tokens"


class MockCharge(EngineResource, stripe.Charge):
    engine_path = "/v1/charges"


class MockRefund(EngineResource, stripe.Refund):
    engine_path = "/v1/refunds"


class MockPaymentMethod(EngineResource, stripe.PaymentMethod):
    engine_path = "/v1/payment_methods"


class MockPaymentIntent(EngineResource, stripe.PaymentIntent):
    engine_path = "/v1/payment_intents"

    @classmethod
    def confirm(cls, intent, api_key=None, idempotency_key=None, **params):
        path = f"{cls.engine_path}/{intent}/confirm"
        return cls._engine_call("POST", path, params, api_key, idempotency_key)


class MockCustomer(EngineResource, stripe.Customer):
    engine_path = "/v1/customers"


class MockSetupIntent(EngineResource, stripe.SetupIntent):
    engine_path = "/v1/setup_intents"

    @classmethod
    def confirm(cls, intent, api_key=None, idempotency_key=None, **params):
        path = f"{cls.engine_path}/{intent}/confirm"
        return cls._engine_call("POST", path, params, api_key, idempotency_key)


class MockEphemeralKey(stripe.EphemeralKey):
    """Like stripe-python: refuses without stripe_version, sends it as Stripe-Version."""

    @classmethod
    def create(cls, api_key=None, idempotency_key=None, stripe_version=None, **params):
        if stripe_version is None:
            raise ValueError("stripe_version must be specified to create an ephemeral key")
        key = api_key or stripe.api_key or TEST_API_KEY
        headers = CaseInsensitiveDict(
            {"Authorization": f"Bearer {key}", "Stripe-Version": stripe_version}
        )
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        body = encode_form(params).encode()
        try:
            answer = current_engine().handle("POST", "/v1/ephemeral_keys", "", body, headers)
        except TransportFault as fault:
            raise connection_error(fault) from None
        payload = json.loads(answer.body)
        if answer.status >= 400:
            raise error_for(answer.status, payload, answer.headers)
        return cls.construct_from(payload, key)


# ---------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------
def signed_webhook(event, secret, timestamp=None):
    """(body, Stripe-Signature header) for an event, exactly as Stripe would send them."""
    payload = json.dumps(event).encode()
    return payload, sign_webhook(payload, secret, timestamp)


def deliver_events(url, secret, fake=None, session=None):
    """POST every undelivered event to a localhost URL, signed; returns [(event id, status)]."""
    host = urlsplit(url).hostname
    if not is_loopback(host):
        raise ValueError(f"the fake delivers webhooks to loopback only, not {host}")
    fake = fake or current_engine()
    http = session or requests
    results = []
    for event in list(fake.events):
        if event["id"] in fake.delivered:
            continue
        payload, header = signed_webhook(event, secret)
        response = http.post(
            url,
            data=payload,
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
            timeout=10,
        )
        if 200 <= response.status_code < 300:
            fake.delivered.add(event["id"])
            event["pending_webhooks"] = 0
        results.append((event["id"], response.status_code))
    return results
