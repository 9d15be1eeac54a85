"""Signed-in devices: one knox token per device, stored only as a hash.

`DeviceSession` is knox's token model (settings.KNOX_TOKEN_MODEL) with what the
mobile app needs on top: a public id (knox's primary key is the digest, which
must not travel in URLs), the device's name and platform, and when it was last
used. A row holds the SHA-512 digest of the token and its first 15 characters
(knox's lookup key); neither is usable as a bearer token.
"""

from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class DeviceSession(AbstractAuthToken):
    class Platform(models.TextChoices):
        IOS = "ios"
        ANDROID = "android"
        WEB = "web"
        OTHER = "other"

    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=100, blank=True)
    platform = models.CharField(max_length=10, choices=Platform.choices, default=Platform.OTHER)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["expiry"], name="session_expiry")]  # purge_sessions

    def __str__(self):
        return f"{self.name or self.platform} session of {self.user_id}"


class PendingUnregistration(models.Model):
    """A push registration to remove at the provider, written before the call.

    Signing out removes the device row at once; if the provider cannot be
    reached, this row stays and `manage.py purge_sessions` retries it.
    """

    hwid = models.CharField(max_length=64, unique=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"unregister {self.hwid}"
