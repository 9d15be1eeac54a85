"""pytest wiring: the same network guard and per-test reset as backend.test_runner."""

import pytest

from backend import netguard
from backend.testing import reset_state


def pytest_configure(config):
    netguard.enable()  # before collection: importing a test module cannot reach out either


def pytest_unconfigure(config):
    netguard.disable()


@pytest.fixture(autouse=True)
def _reset_state():
    if not netguard.is_enabled():  # something lifted it: put it back before the test
        netguard.enable()
    reset_state()
