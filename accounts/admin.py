from django.contrib import admin

from accounts import services
from accounts.models import DeviceSession, PendingUnregistration


@admin.register(DeviceSession)
class DeviceSessionAdmin(admin.ModelAdmin):
    """Read-only: sessions are made by signing in; the digest is never shown."""

    list_display = ["id", "user", "name", "platform", "created", "last_used_at", "expiry"]
    list_filter = ["platform"]
    search_fields = ["user__username", "name"]
    fields = ["user", "name", "platform", "created", "last_used_at", "expiry"]
    readonly_fields = fields
    actions = ["sign_out"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # use the action: it also removes the push registrations

    @admin.action(description="Sign out the selected devices (and their push registrations)")
    def sign_out(self, request, queryset):
        count = services.end_sessions(queryset)
        self.message_user(request, f"Signed out {count} device(s).")


@admin.register(PendingUnregistration)
class PendingUnregistrationAdmin(admin.ModelAdmin):
    list_display = ["hwid", "attempts", "last_error", "created_at"]
    readonly_fields = list_display
