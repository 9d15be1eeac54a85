from django.contrib import admin

from notifications.models import Device, NotificationLog


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "platform", "registered_at", "last_error"]


@admin.register(NotificationLog)
class NotificationLogAdmin(admin.ModelAdmin):
    list_display = ["id", "user", "day", "status", "attempts", "message_code", "last_error"]
    list_filter = ["status", "kind", "day"]
