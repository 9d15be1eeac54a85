import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class ClientRequest(models.Model):
    """A row written before a provider call, for one client request (a payment, a refund).

    Client idempotency: the request's Idempotency-Key, a keyed hash of its body, and the
    answer first given, replayed for a retry of the same request; and a claim
    (`locked_until`) while a request talks to Stripe for the row, so a duplicate waits.
    """

    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]


class Payment(ClientRequest):
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
    # Set from Stripe's charge (its cumulative amount_refunded), never incremented here.
    amount_refunded = models.PositiveIntegerField(default=0)
    # The version of Stripe's refund state last applied (see settlement.refund_version):
    # an older snapshot (a late or reordered webhook) never moves the ledger back.
    refund_version = models.PositiveIntegerField(default=0)
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

    class Meta(ClientRequest.Meta):
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


class Refund(ClientRequest):
    """One refund request (or a refund Stripe reports that was made elsewhere).

    Written `pending` before Stripe is called, so its amount is reserved against the
    payment; settled from Stripe's answer, its webhooks or reconcile_payments.
    """

    class Status(models.TextChoices):
        # Stripe's refund statuses; `pending` also covers "not confirmed by Stripe yet".
        PENDING = "pending"
        REQUIRES_ACTION = "requires_action"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELED = "canceled"

    # Stripe idempotency key `refund-<reference>`: random, so never shared across refunds.
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty for a refund made outside this API (e.g. Stripe's Dashboard).",
    )
    amount = models.PositiveIntegerField(help_text="In the currency's smallest unit.")
    reason = models.CharField(max_length=32, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    stripe_refund_id = models.CharField(max_length=255, blank=True, db_index=True)
    # Stripe's failure_reason, or the code of Stripe's refusal (e.g. charge_already_refunded).
    failure_reason = models.CharField(max_length=64, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)

    class Meta(ClientRequest.Meta):
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="refund_unique_idempotency_key_per_payment",
            ),
        ]

    def __str__(self):
        return f"Refund {self.pk} of payment {self.payment_id}: {self.amount} {self.status}"

    @property
    def stripe_idempotency_key(self):
        return f"refund-{self.reference}"


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
