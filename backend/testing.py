"""Test helpers shared by both runners (manage.py test and pytest).

Faked by default, like Django's locmem mail backend: both runners install the
fake Stripe, push provider and todo API beneath the real client code for the
whole run (`install_default_fakes()`), and every test starts with fresh ones
(`reset_state()`). A test reaches them through `fakes()`:

    from backend.testing import fakes

    fakes().stripe.charges      # the engine the stripe library talks to now
    fakes().push.outbox         # what users would have received
    fakes().todos.todos = [...]  # what the todo API answers

On top of the defaults, and winning over them: `mock.patch("stripe.Token", MockToken)`,
a test's own `fake_stripe()` / `fake_push()` / `fake_todos()`, and `responses`
(while `responses` is active the default fakes step aside entirely). A test that
must not be faked (a contract test) uses `@without_default_fakes` (or `real_network`).
"""

import contextlib
import functools
import os
import unittest

import stripe
from django.conf import settings
from django.core.cache import caches
from django.test.utils import override_settings

from fakes import netguard
from fakes.pushwoosh import FAKE_APPLICATION, FAKE_AUTH, FAKE_PUSH_URL, FakePushProvider
from fakes.stripe import (
    TEST_API_KEY,
    DefaultFakeStripeClient,
    FakeStripe,
    current_engine,
    set_default_engine,
)
from fakes.todos import FAKE_TODOS_URL, FakeTodoApi
from fakes.transport import RequestsAdapter

DEFAULT_TODOS_URL = FAKE_TODOS_URL

# The network guard's advice names this project's wrappers (both runners import this module
# before they enable the guard).
netguard.configure(
    advice={
        "stripe.com": "use payments.testing.fake_stripe() (or MockToken) to fake Stripe",
        "pushwoosh.com": "use notifications.testing.fake_push() or `responses` to fake pushes",
        "jsonplaceholder.typicode.com": "use notifications.testing.fake_todos() to fake the todo API",
    },
    remedy="A test that truly needs the network uses @backend.testing.real_network and runs "
    "with REAL_NETWORK_TESTS=1.",
)


class Fakes:
    """The fakes a test's code talks to right now (`backend.testing.fakes()`)."""

    def __init__(self):
        self.default_stripe = FakeStripe()
        self.default_push = FakePushProvider()
        self.default_todos = FakeTodoApi()

    @property
    def stripe(self):
        """The engine the stripe library answers from (a test's own fake_stripe() first)."""
        return current_engine()

    @property
    def push(self):
        """The fake behind settings.PUSH_API_URL (a test's own fake_push() first)."""
        return _mounted_fake(settings.PUSH_API_URL, self.default_push)

    @property
    def todos(self):
        """The fake behind settings.TODOS_API_URL (a test's own fake_todos() first)."""
        return _mounted_fake(settings.TODOS_API_URL, self.default_todos)


def _mounted_fake(url, default):
    from notifications.http import session

    try:
        adapter = session.get_adapter(url)
    except Exception:
        return default
    fake = getattr(adapter, "fake", None) if isinstance(adapter, RequestsAdapter) else None
    if isinstance(fake, _CurrentFake):
        return fake.current()
    return fake if fake is not None else default


class _CurrentFake:
    """Forwards handle() to the current test's fake of one kind."""

    def __init__(self, attribute):
        self.attribute = attribute

    def current(self):
        return getattr(_current, self.attribute)

    def handle(self, *args, **kwargs):
        return self.current().handle(*args, **kwargs)


_current = None
_installed = None  # the settings override and saved globals while the defaults are installed


def fakes():
    """The current test's fakes: `.stripe` (engine), `.push` (provider), `.todos` (API)."""
    if _current is None:
        raise RuntimeError("the default fakes are installed by the test runners only")
    return _current


def _default_settings():
    return {
        "PUSH_API_URL": FAKE_PUSH_URL,
        "PUSH_APPLICATION": FAKE_APPLICATION,
        "PUSH_AUTH_KEY": FAKE_AUTH,
        "TODOS_API_URL": DEFAULT_TODOS_URL,
        # Not the sandbox service: the in-process fakes (a test that wants the service starts
        # one: payments.testing.service, fakes.service.start_service).
        "SANDBOX_SERVICES": [],
        "STRIPE_API_BASE": "",
        # Django's "Speeding up the tests": PBKDF2 at its production cost takes ~0.25 s a hash,
        # and the suite's 24 hashes were a quarter of its CPU time.
        "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    }


def _point_clients_at_defaults():
    from notifications.http import session

    if not isinstance(stripe.default_http_client, DefaultFakeStripeClient):
        stripe.default_http_client = DefaultFakeStripeClient()
    stripe.api_key = TEST_API_KEY
    stripe.api_base = stripe.DEFAULT_API_BASE
    for url, attribute in ((FAKE_PUSH_URL, "default_push"), (DEFAULT_TODOS_URL, "default_todos")):
        session.mount(url, RequestsAdapter(_CurrentFake(attribute), url, defer_to_responses=True))


def install_default_fakes():
    """Install the default fakes for a test run (both runners call this once)."""
    global _installed
    if _installed is not None:
        return
    saved = {name: getattr(stripe, name) for name in ("api_key", "api_base", "default_http_client")}
    override = override_settings(**_default_settings())
    override.enable()
    _installed = (override, saved)
    new_fakes()
    _point_clients_at_defaults()


def uninstall_default_fakes():
    global _installed, _current
    if _installed is None:
        return
    from notifications.http import session

    override, saved = _installed
    for name, value in saved.items():
        setattr(stripe, name, value)
    for url in (FAKE_PUSH_URL, DEFAULT_TODOS_URL):
        session.adapters.pop(url, None)
    override.disable()
    set_default_engine(None)
    _installed = _current = None


def new_fakes():
    """Fresh default fakes (called before every test)."""
    global _current
    _current = Fakes()
    set_default_engine(_current.default_stripe)
    return _current


def reset_state():
    """Per-test reset the database rollback does not cover: caches (throttle counters), the
    module-level fakes and, when installed, fresh default fakes with the clients pointed at
    them again."""
    for cache in caches.all(initialized_only=True):
        cache.clear()
    _reset_module_level_fakes()
    if _installed is not None:
        new_fakes()
        _point_clients_at_defaults()


def _reset_module_level_fakes():
    # fake_push(), fake_todos(), `fakeservices`' default mounts and the sandbox serve these
    # module-level fakes, which outlive a test: one left changed would change whichever test
    # its process runs next, and parallel runs change that order.
    from notifications.testing import push_provider, todo_api
    from payments.testing import shared_engine

    for fake in (shared_engine, push_provider, todo_api):
        fake.reset()


@contextlib.contextmanager
def no_default_fakes():
    """A block with the real clients: the stripe library as configured in settings, the
    push/todo settings as configured, no default adapters. The network guard still holds."""
    if _installed is None:
        yield
        return
    from notifications.http import session

    override, saved = _installed
    real = {
        name: getattr(override.wrapped, name)
        for name in _default_settings()
        if hasattr(override.wrapped, name)
    }
    adapters = {url: session.adapters.pop(url, None) for url in (FAKE_PUSH_URL, DEFAULT_TODOS_URL)}
    globals_saved = {n: getattr(stripe, n) for n in ("api_key", "api_base", "default_http_client")}
    for name, value in saved.items():
        setattr(stripe, name, value)
    try:
        with override_settings(**real):
            yield
    finally:
        for name, value in globals_saved.items():
            setattr(stripe, name, value)
        for url, adapter in adapters.items():
            if adapter is not None:
                session.mount(url, adapter)


def _wrap_test(test, context):
    """Run a test method or every test of a class inside `context()`."""
    if isinstance(test, type):
        original_run = test.run

        def run(self, result=None):
            with context():
                return original_run(self, result)

        test.run = run
        return test

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        with context():
            return test(*args, **kwargs)

    return wrapper


def without_default_fakes(test):
    """Decorator (method or class): the test talks to the real clients, not the default
    fakes (contract tests). Its own fake_stripe()/fake_push()/responses still work."""
    return _wrap_test(test, no_default_fakes)


def real_network(reason):
    """Mark a test (or class) that talks to a real third-party service.

    It is skipped unless REAL_NETWORK_TESTS=1 (settings.REAL_NETWORK_TESTS); only
    while it runs is the network guard lifted, and the default fakes are removed.
    """

    @contextlib.contextmanager
    def context():
        with netguard.allowed(), no_default_fakes():
            yield

    def decorate(test):
        skip = unittest.skipUnless(
            settings.REAL_NETWORK_TESTS, f"real network test ({reason}); set REAL_NETWORK_TESTS=1"
        )
        return skip(_wrap_test(test, context))

    return decorate


def slow_test(test):
    """Skipped unless SLOW_TESTS=1 (journeys with real servers or a browser; .ci/run sets it)."""
    return unittest.skipUnless(
        os.environ.get("SLOW_TESTS") == "1", "slow journey; set SLOW_TESTS=1"
    )(test)
