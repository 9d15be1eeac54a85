from django.contrib import admin

from payments.models import Payment, StripeCustomer, StripeEvent


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "owner",
        "amount",
        "currency",
        "status",
        "card_brand",
        "card_last4",
        "created_at",
    ]
    list_filter = ["status", "currency", "method"]
    search_fields = ["id", "owner__username", "stripe_charge_id", "stripe_payment_intent_id"]
    readonly_fields = [
        "reference",
        "owner",
        "amount",
        "currency",
        "method",
        "status",
        "amount_refunded",
        "stripe_token_id",
        "stripe_charge_id",
        "stripe_payment_intent_id",
        "card_brand",
        "card_last4",
        "failure_code",
        "decline_code",
        "failure_message",
        "idempotency_key",
        "request_fingerprint",
        "response_status",
        "response_body",
        "locked_until",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request):
        return False  # payments are created through the API, which talks to Stripe

    def has_delete_permission(self, request, obj=None):
        return False  # money records are kept


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "payment", "received_at"]
    readonly_fields = ["event_id", "type", "payment", "received_at"]


@admin.register(StripeCustomer)
class StripeCustomerAdmin(admin.ModelAdmin):
    """Read-only: the row is the Customer's idempotency key, written by checkout.customer_for."""

    list_display = ["user", "stripe_customer_id", "created_at"]
    search_fields = ["user__username", "stripe_customer_id"]
    readonly_fields = ["user", "reference", "stripe_customer_id", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
