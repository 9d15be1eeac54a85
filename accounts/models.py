"""Signed-in devices: one knox token per device, stored only as a hash.

`DeviceSession` is knox's token model (settings.KNOX_TOKEN_MODEL) with what the
mobile app needs on top: a public id (knox's primary key is the digest, which
must not travel in URLs), the device's name and platform, and when it was last
used. A row holds the SHA-512 digest of the token and its first 15 characters
(knox's lookup key); neither is usable as a bearer token.

It also keeps what the token was issued against: the user's session auth hash (Django's
HMAC of the password hash, `get_session_auth_hash`, which `SessionMiddleware` logins
carry for the same reason). Authentication refuses a session whose hash no longer
matches, so a password set by any path (the API, the admin, `changepassword`,
`set_password()` + `save()`, even a queryset update) signs every device out.
"""

from django.db import models
from django.utils.crypto import constant_time_compare
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
    auth_hash = models.CharField(
        max_length=128,
        editable=False,
        help_text="The user's session auth hash when this device signed in (or when the "
        "API's password change kept it signed in): another password signs it out.",
    )

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["expiry"], name="session_expiry")]  # purge_sessions

    def __str__(self):
        return f"{self.name or self.platform} session of {self.user_id}"

    def save(self, *args, **kwargs):
        if self._state.adding and not self.auth_hash:
            self.auth_hash = self.user.get_session_auth_hash()
        super().save(*args, **kwargs)

    def issued_for_current_password(self):
        """True while the user's password is the one this session was issued against.

        As django.contrib.auth.get_user does for browser sessions: a hash made with a
        key in SECRET_KEY_FALLBACKS still counts (and is re-made with SECRET_KEY), so
        rotating the secret key signs nobody out.
        """
        user = self.user
        if constant_time_compare(self.auth_hash, user.get_session_auth_hash()):
            return True
        if any(
            constant_time_compare(self.auth_hash, fallback)
            for fallback in user.get_session_auth_fallback_hash()
        ):
            self.keep_for_current_password()
            return True
        return False

    def keep_for_current_password(self):
        """Issue this session against the user's password as it is now."""
        self.auth_hash = self.user.get_session_auth_hash()
        self.save(update_fields=["auth_hash"])


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
