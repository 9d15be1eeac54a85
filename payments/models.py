import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Payment(models.Model):
    """One card payment. Written (pending) before Stripe is called, settled after.

    Never holds a card number or CVC: only the brand and last four digits Stripe returns.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        REQUIRES_ACTION = "requires_action"
        REFUNDED = "refunded"
        PARTIALLY_REFUNDED = "partially_refunded"
        REQUIRES_CAPTURE = "requires_capture"  # funds held (capture: false), not yet taken
        CANCELED = "canceled"  # a hold released (canceled or expired) before capture

    class Method(models.TextChoices):
        CARD = "card", "Raw card (tokenised server-side)"
        TOKEN = "token", "Stripe token from the mobile SDK"
        PAYMENT_METHOD = "payment_method", "PaymentMethod (PaymentIntents API)"
        PAYMENT_SHEET = "payment_sheet", "PaymentSheet (the mobile SDK confirms)"

    # Random, so Stripe idempotency keys never collide across databases (a reset dev
    # database restarts ids; Stripe remembers keys for 24 hours).
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments"
    )
    amount = models.PositiveIntegerField(help_text="In the currency's smallest unit.")
    currency = models.CharField(max_length=3)
    description = models.CharField(max_length=255, blank=True)
    method = models.CharField(max_length=20, choices=Method.choices)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    amount_refunded = models.PositiveIntegerField(default=0)
    # capture: false holds the funds (manual capture); amount_captured is Stripe's figure
    # once captured (less than amount after a partial capture; the rest is released).
    capture = models.BooleanField(default=True)
    amount_captured = models.PositiveIntegerField(null=True, blank=True)

    stripe_token_id = models.CharField(max_length=255, blank=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)

    failure_code = models.CharField(max_length=64, blank=True)
    decline_code = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)

    # Client idempotency: the key, a keyed hash of the request body, and the
    # response first given, replayed for a retry of the same request.
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    # While a request is talking to Stripe for this row, a duplicate must wait.
    locked_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="payment_unique_idempotency_key_per_owner",
            ),
        ]

    def __str__(self):
        return f"Payment {self.pk}: {self.amount} {self.currency} {self.status}"

    @property
    def stripe_idempotency_key(self):
        """Derived from the row, so every retry of this payment is the same Stripe request."""
        return f"payment-{self.reference}"

    @property
    def refundable_amount(self):
        if self.status not in (self.Status.SUCCEEDED, self.Status.PARTIALLY_REFUNDED):
            return 0
        return self.amount - self.amount_refunded


class StripeEvent(models.Model):
    """Webhook events already processed: a replayed delivery is acknowledged, not reapplied."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.type} {self.event_id}"


class StripeCustomer(models.Model):
    """The user's Stripe Customer (saved cards, PaymentSheet). Written before Stripe is called:
    its random reference is the Customer's idempotency key, so two concurrent first payments
    create one Customer."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="stripe_customer"
    )
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.user_id}: {self.stripe_customer_id or '(not created yet)'}"

    @property
    def stripe_idempotency_key(self):
        return f"customer-{self.reference}"


class CardSetup(models.Model):
    """One "save a card" attempt (a SetupIntent), written before Stripe is called."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="card_setups"
    )
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    idempotency_key = models.CharField(max_length=255, blank=True)
    stripe_setup_intent_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="card_setup_unique_idempotency_key_per_user",
            ),
        ]

    def __str__(self):
        return f"CardSetup {self.pk}: {self.stripe_setup_intent_id}"

    @property
    def stripe_idempotency_key(self):
        return f"card-setup-{self.reference}"
