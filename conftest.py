"""pytest wiring: the same network guard, default fakes and per-test reset as
backend.test_runner, and fixtures named like the accessor (`fakes`, and its parts)."""

import pytest

from backend import netguard, testing


def pytest_configure(config):
    netguard.enable()  # before collection: importing a test module cannot reach out either


def pytest_unconfigure(config):
    testing.uninstall_default_fakes()
    netguard.disable()


@pytest.fixture(autouse=True)
def _reset_state(django_test_environment):
    if not netguard.is_enabled():  # something lifted it: put it back before the test
        netguard.enable()
    testing.install_default_fakes()  # once; after pytest-django set up the test environment
    testing.reset_state()


@pytest.fixture
def fakes():
    """backend.testing.fakes(): .stripe, .push, .todos for this test."""
    return testing.fakes()


@pytest.fixture
def stripe_fake(fakes):
    return fakes.stripe


@pytest.fixture
def push_fake(fakes):
    return fakes.push


@pytest.fixture
def todos_fake(fakes):
    return fakes.todos
