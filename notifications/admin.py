from django.contrib import admin

from notifications.models import Device, NotificationLog


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "platform", "registered_at", "last_error"]


@admin.register(NotificationLog)
class NotificationLogAdmin(admin.ModelAdmin):
    """Every reminder, expired ones included: filter by status to see what never went out."""

    list_display = [
        "id", "user", "day", "status", "attempts", "next_attempt_at", "sent_at",
        "message_code", "last_error",
    ]  # fmt: skip
    list_filter = ["status", "kind", "day"]
    search_fields = ["user__username", "transaction_id", "message_code"]
    readonly_fields = ["transaction_id", "lease_token", "lease_expires_at", "created_at"]
    list_select_related = ["user"]
