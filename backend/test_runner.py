import unittest

from django.test.runner import DiscoverRunner

from backend import netguard
from backend.testing import reset_state


class ResettingTextTestResult(unittest.TextTestResult):
    def startTest(self, test):
        reset_state()
        super().startTest(test)


class NetworkGuardedRunner(DiscoverRunner):
    """`manage.py test` with the network guard on and a clean cache per test."""

    def setup_test_environment(self, **kwargs):
        super().setup_test_environment(**kwargs)
        netguard.enable()

    def teardown_test_environment(self, **kwargs):
        netguard.disable()
        super().teardown_test_environment(**kwargs)

    def get_resultclass(self):
        return super().get_resultclass() or ResettingTextTestResult
