import unittest

from django.test.runner import DiscoverRunner

from backend import testing
from fakes import netguard


class ResettingTextTestResult(unittest.TextTestResult):
    def startTest(self, test):
        testing.reset_state()
        super().startTest(test)


class NetworkGuardedRunner(DiscoverRunner):
    """`manage.py test` with the network guard on, the default fakes installed (fresh
    for every test, see backend.testing) and a clean cache per test."""

    def setup_test_environment(self, **kwargs):
        super().setup_test_environment(**kwargs)
        netguard.enable()
        testing.install_default_fakes()

    def teardown_test_environment(self, **kwargs):
        testing.uninstall_default_fakes()
        netguard.disable()
        super().teardown_test_environment(**kwargs)

    def get_resultclass(self):
        return super().get_resultclass() or ResettingTextTestResult
