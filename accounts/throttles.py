"""Sign-in throttles: per client address (conventions.throttles.AuthThrottle) and per username.

The per-username throttle counts failed sign-ins only, from any address, so a
password-guessing botnet is slowed on each account it targets while the owner,
who signs in correctly, is not counted. An unknown username is throttled exactly
like a known one: the answer never tells them apart.
"""

import hashlib

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class UsernameThrottle(SimpleRateThrottle):
    scope = "auth_username"

    def get_rate(self):
        return settings.AUTH_THROTTLE_USERNAME

    def get_cache_key(self, request, view):
        data = request.data if hasattr(request, "data") else {}
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str) or not username.strip():
            return None  # the serializer refuses it
        ident = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def throttle_success(self):
        return True  # only failures are recorded (record_failure)

    def record_failure(self, request):
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        key = self.get_cache_key(request, None)
        if key is None:
            return
        now = self.timer()
        history = [t for t in self.cache.get(key, []) if t > now - self.duration]
        history.insert(0, now)
        self.cache.set(key, history, self.duration)
