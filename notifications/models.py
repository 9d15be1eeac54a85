from django.conf import settings
from django.db import models


class Device(models.Model):
    class Platform(models.TextChoices):
        IOS = "ios"
        ANDROID = "android"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices"
    )
    platform = models.CharField(max_length=10, choices=Platform.choices)
    push_token = models.CharField(max_length=512, unique=True)
    hwid = models.CharField(
        max_length=64, unique=True, help_text="The id the provider knows it by."
    )
    registered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The signed-in device (token) that registered it: signing that device out deletes this
    # row and unregisters it at the provider (accounts.services.end_sessions).
    session = models.ForeignKey(
        "accounts.DeviceSession",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="push_devices",
    )

    def __str__(self):
        return f"{self.platform} device of {self.user_id}"


class NotificationLog(models.Model):
    """Every reminder: pending until the provider accepted it. One per user, kind and day."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40, default="todo_reminder")
    day = models.DateField()
    text = models.CharField(max_length=255)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    message_code = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "day"], name="one_notification_per_user_kind_day"
            )
        ]

    def __str__(self):
        return f"{self.kind} for {self.user_id} on {self.day}: {self.status}"
