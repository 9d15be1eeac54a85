"""pytest wiring: the same network guard and per-test reset as backend.test_runner."""

import pytest

from backend import netguard
from backend.testing import reset_state


@pytest.fixture(autouse=True, scope="session")
def _network_guard():
    netguard.enable()
    yield
    netguard.disable()


@pytest.fixture(autouse=True)
def _reset_state(_network_guard):
    if not netguard.is_enabled():  # something lifted it: put it back before the test
        netguard.enable()
    reset_state()
