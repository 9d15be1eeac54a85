"""pytest fixtures for the fakes, for any test suite (no Django needed).

Installing this project registers the plugin (entry point `fakes.pytest_plugin`, as
`responses` and `pytest-httpserver` do); `-p fakes.pytest_plugin` loads it explicitly
and `-p no:fakes.pytest_plugin` turns it off. It changes nothing until a test asks for
one of its fixtures, and the network guard is off unless you turn it on.

Fixtures (each fresh for one test):

- `fakes_stripe`: a new FakeStripe installed beneath stripe-python (fake_stripe()): the
  library's HTTP client answers from it in process, `stripe.api_key` is a test key; the
  engine is yielded (`.charges`, `.events`, `.faults`, ...) and the globals restored after.
- `fakes_session`: the requests.Session the push and todo fakes are mounted on, a new one
  per test. Override it in your conftest.py to mount them on your client's own session.
- `fakes_pushwoosh`: a FakePushProvider mounted on `fakes_session` at FAKE_PUSH_URL
  (application FAKE_APPLICATION, auth FAKE_AUTH); `.outbox` is what users received.
- `fakes_todos`: a FakeTodoApi mounted on `fakes_session` at FAKE_TODOS_URL.
- `fakes_server`: a FakeServer on 127.0.0.1 (a free port) serving new fakes: Stripe under
  /stripe, Pushwoosh under /push, the todo API under /todos-api; `.url`, and the fakes in
  `.mounts` ({"/stripe": engine, ...}). `fakes.stripe.stripe_server(url + "/stripe")`
  points stripe-python at it.
- `fakes_allow_network`: lifts the network guard for one test.

The network guard (fakes.netguard): `--fakes-netguard`, or `fakes_netguard = true` in the
ini file, blocks DNS look-ups and connections to anything but loopback for the whole run,
collection included, with an error that names host and port.
"""

import pytest
import requests

from fakes import netguard
from fakes.pushwoosh import FAKE_PUSH_URL, FakePushProvider
from fakes.server import FakeServer
from fakes.stripe import FakeStripe, fake_stripe
from fakes.todos import FAKE_TODOS_URL, FakeTodoApi
from fakes.transport import mounted

GUARD_HELP = "block all but loopback while the tests run (fakes.netguard)"


def pytest_addoption(parser):
    group = parser.getgroup("fakes", "fake third-party services (fakes.pytest_plugin)")
    group.addoption("--fakes-netguard", action="store_true", default=None, help=GUARD_HELP)
    parser.addini("fakes_netguard", GUARD_HELP, type="bool", default=False)


def _guard_wanted(config):
    flag = config.getoption("fakes_netguard")
    return flag if flag is not None else config.getini("fakes_netguard")


def pytest_configure(config):
    # Before collection, so importing a test module cannot reach out either.
    if _guard_wanted(config) and not netguard.is_enabled():
        netguard.enable()
        config._fakes_enabled_netguard = True


def pytest_unconfigure(config):
    if getattr(config, "_fakes_enabled_netguard", False):
        netguard.disable()


@pytest.fixture
def fakes_stripe():
    """A new fake Stripe beneath stripe-python for this test; yields the engine."""
    with fake_stripe(FakeStripe()) as engine:
        yield engine


@pytest.fixture
def fakes_session():
    """The requests.Session the push and todo fakes are mounted on (override to use yours)."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def fakes_pushwoosh(fakes_session):
    """A new fake Pushwoosh at FAKE_PUSH_URL on `fakes_session`."""
    with mounted(fakes_session, FAKE_PUSH_URL, FakePushProvider()) as provider:
        yield provider


@pytest.fixture
def fakes_todos(fakes_session):
    """A new fake todo API at FAKE_TODOS_URL on `fakes_session`."""
    with mounted(fakes_session, FAKE_TODOS_URL, FakeTodoApi()) as api:
        yield api


@pytest.fixture
def fakes_server():
    """New fakes served on 127.0.0.1: /stripe, /push, /todos-api; `.url`, `.mounts`."""
    mounts = {"/stripe": FakeStripe(), "/push": FakePushProvider(), "/todos-api": FakeTodoApi()}
    with FakeServer(mounts).start() as server:
        yield server


@pytest.fixture
def fakes_allow_network():
    """Lift the network guard (if on) for this test."""
    with netguard.allowed():
        yield
