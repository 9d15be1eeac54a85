"""Test helpers shared by both runners (manage.py test and pytest)."""

import functools
import unittest

from django.conf import settings
from django.core.cache import caches

from backend import netguard


def reset_state():
    """Per-test reset the database rollback does not cover: caches (throttle counters)."""
    for cache in caches.all(initialized_only=True):
        cache.clear()


def real_network(reason):
    """Mark a test (or class) that talks to a real third-party service.

    It is skipped unless REAL_NETWORK_TESTS=1 (settings.REAL_NETWORK_TESTS), and
    only while it runs is the network guard lifted.
    """

    def decorate(test):
        skip = unittest.skipUnless(
            settings.REAL_NETWORK_TESTS, f"real network test ({reason}); set REAL_NETWORK_TESTS=1"
        )
        if isinstance(test, type):
            original_run = test.run

            def run(self, result=None):
                with netguard.allowed():
                    return original_run(self, result)

            test.run = run
            return skip(test)

        @functools.wraps(test)
        def wrapper(*args, **kwargs):
            with netguard.allowed():
                return test(*args, **kwargs)

        return skip(wrapper)

    return decorate
