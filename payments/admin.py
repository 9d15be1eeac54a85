from django.contrib import admin

from payments.models import Payment, Refund, StripeCustomer, StripeEvent

# ClientRequest's fields, shown read-only for payments and refunds alike.
CLIENT_REQUEST_FIELDS = [
    "idempotency_key",
    "request_fingerprint",
    "response_status",
    "response_body",
    "locked_until",
    "created_at",
    "updated_at",
]
REFUND_FIELDS = [
    "reference",
    "payment",
    "requested_by",
    "amount",
    "reason",
    "status",
    "stripe_refund_id",
    "failure_reason",
    "failure_message",
    *CLIENT_REQUEST_FIELDS,
]


class RefundInline(admin.TabularInline):
    model = Refund
    fields = ["amount", "status", "stripe_refund_id", "failure_reason", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # refunds go through the API, which talks to Stripe


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    inlines = [RefundInline]
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
        "refund_version",
        "stripe_token_id",
        "stripe_charge_id",
        "stripe_payment_intent_id",
        "card_brand",
        "card_last4",
        "failure_code",
        "decline_code",
        "failure_message",
        *CLIENT_REQUEST_FIELDS,
    ]

    def has_add_permission(self, request):
        return False  # payments are created through the API, which talks to Stripe

    def has_delete_permission(self, request, obj=None):
        return False  # money records are kept


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = ["id", "payment", "amount", "status", "stripe_refund_id", "created_at"]
    list_filter = ["status"]
    search_fields = ["id", "payment__id", "stripe_refund_id"]
    readonly_fields = REFUND_FIELDS

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # money records are kept


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "payment", "received_at"]
    readonly_fields = ["event_id", "type", "payment", "received_at"]


@admin.register(StripeCustomer)
class StripeCustomerAdmin(admin.ModelAdmin):
    """Read-only: the row is the Customer's idempotency key, written by customers.customer_for."""

    list_display = ["user", "stripe_customer_id", "created_at"]
    search_fields = ["user__username", "stripe_customer_id"]
    readonly_fields = ["user", "reference", "stripe_customer_id", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
