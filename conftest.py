"""pytest wiring: the same network guard, default fakes and per-test reset as
backend.test_runner, and fixtures named like the accessor (`fakes`, and its parts).
Each pytest-xdist worker is a pytest process of its own: it runs these hooks and fixtures
itself, on its own test database (pytest-django's test_<name>_gw<N>)."""

import os

import pytest

from backend import testing
from fakes import netguard


def pytest_configure(config):
    netguard.enable()  # before collection: importing a test module cannot reach out either


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    """How many workers `-n auto` (pyproject.toml) starts. DJANGO_TEST_PROCESSES counts as it
    does for `manage.py test`, so one variable sets both runners; 1 (or 0) runs the tests here,
    with no worker processes. Without it: none for a run of one file or test (workers cost
    more to start than they save, as `manage.py test` runs one test class serially), else
    xdist's count, one per core."""
    if processes := os.environ.get("DJANGO_TEST_PROCESSES"):
        return int(processes) if int(processes) > 1 else 0
    if len(config.args) == 1 and os.path.isfile(config.args[0].split("::")[0]):
        return 0
    return None


def pytest_unconfigure(config):
    testing.uninstall_default_fakes()
    netguard.disable()


@pytest.fixture(autouse=True, scope="session")
def _default_fakes(django_test_environment):
    # Session scope: installed (its settings override enabled) before any test class's own
    # override_settings, so a class-level override's teardown cannot take them away.
    testing.install_default_fakes()
    yield
    testing.uninstall_default_fakes()


@pytest.fixture(autouse=True)
def _reset_state(_default_fakes):
    if not netguard.is_enabled():  # something lifted it: put it back before the test
        netguard.enable()
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
