"""Throttles whose rates are read from settings at request time (override_settings works)."""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


class SettingsRateMixin:
    """Read the rate from settings at request time, so override_settings works."""

    rate_setting = None

    def get_rate(self):
        return getattr(settings, self.rate_setting)


class AnonThrottle(SettingsRateMixin, AnonRateThrottle):
    rate_setting = "API_THROTTLE_ANON"


class UserThrottle(SettingsRateMixin, UserRateThrottle):
    rate_setting = "API_THROTTLE_USER"


class AuthThrottle(SettingsRateMixin, AnonRateThrottle):
    """Login and registration, per client address: slows password guessing."""

    scope = "auth"
    rate_setting = "API_THROTTLE_AUTH"
