"""Payments business logic: charge exactly once, record everything, never keep a card number.

The stripe library is always called through the `stripe` module at call time
(`stripe.Token.create`, not `from stripe import Token`), so tests can swap a
resource (`mock.patch('stripe.Token', MockToken)`) or the provider beneath the
library (`fake_stripe()`).
"""

import hashlib
import hmac
import json
import logging
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from backend.api import ApiError, envelope
from payments import checkout
from payments.models import Payment

logger = logging.getLogger(__name__)

# How long a request may hold a payment while it talks to Stripe (library retries included).
CLAIM_SECONDS = 120
RETRY_AFTER_SECONDS = "5"
# Stripe keeps idempotency keys for 24 hours; a retry must come well inside that.
STRIPE_IDEMPOTENCY_WINDOW = timedelta(hours=23)
CARD_FIELDS = ("number", "exp_month", "exp_year", "cvc")


def request_fingerprint(data):
    """A keyed hash of the request body: compares retries without storing card data."""
    canonical = json.dumps(data, sort_keys=True, default=str).encode()
    return hmac.new(settings.SECRET_KEY.encode(), canonical, hashlib.sha256).hexdigest()


def field(obj, name, default=None):
    """obj[name] for a StripeObject (no .get since stripe 13) or a dict; default if absent or null."""
    try:
        value = obj[name]
    except (KeyError, TypeError, AttributeError):
        return default
    return default if value is None else value


def method_of(data):
    if data.get("sheet"):
        return Payment.Method.PAYMENT_SHEET
    if data.get("payment_method"):
        return Payment.Method.PAYMENT_METHOD
    if data.get("token"):
        return Payment.Method.TOKEN
    return Payment.Method.CARD


def create_payment(user, data, idempotency_key=""):
    """Charge the caller; returns (HTTP status, body, headers) for the API to answer with."""
    fingerprint = request_fingerprint(data)
    payment, replay = claim_payment(user, data, idempotency_key, fingerprint)
    if replay:
        return replay
    status, body, headers, final = charge(payment, data)
    updates = {"locked_until": None}
    if final:  # a retry of the same request gets the same answer
        updates.update(response_status=status, response_body=body)
    Payment.objects.filter(pk=payment.pk).update(**updates)
    return status, body, headers


def claim_payment(user, data, idempotency_key, fingerprint):
    """Write the pending row first (or find the earlier one for this Idempotency-Key)."""
    now = timezone.now()
    fields = {
        "owner": user,
        "amount": data["amount"],
        "currency": data["currency"],
        "description": data.get("description", ""),
        "method": method_of(data),
        "capture": data.get("capture", True),
        "idempotency_key": idempotency_key,
        "request_fingerprint": fingerprint,
        "locked_until": now + timedelta(seconds=CLAIM_SECONDS),
    }
    if not idempotency_key:
        return Payment.objects.create(**fields), None
    try:
        with transaction.atomic():
            return Payment.objects.create(**fields), None
    except IntegrityError:
        pass  # an earlier request used this key
    existing = Payment.objects.get(owner=user, idempotency_key=idempotency_key)
    if not hmac.compare_digest(existing.request_fingerprint, fingerprint):
        raise ApiError(
            "This Idempotency-Key was already used with a different request body. Use a new "
            "key for a new payment.",
            code="idempotency_key_reused",
            type="idempotency_error",
            status_code=422,
        )
    if existing.response_body is not None:
        headers = {"Idempotent-Replayed": "true"}
        return existing, (existing.response_status, existing.response_body, headers)
    if existing.created_at < now - STRIPE_IDEMPOTENCY_WINDOW:
        # Stripe forgets idempotency keys after 24 hours: calling it again could charge twice.
        raise ApiError(
            "This payment is still being settled; it will be reconciled with Stripe. "
            "Check GET /api/payments/ before paying again.",
            code="payment_needs_reconciliation",
            type="idempotency_error",
            status_code=409,
        )
    claimed = (
        Payment.objects.filter(pk=existing.pk, response_body__isnull=True)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    if not claimed:
        raise ApiError(
            "A request with this Idempotency-Key is still being processed. Retry shortly.",
            code="idempotency_request_in_progress",
            type="idempotency_error",
            status_code=409,
            headers={"Retry-After": "1"},
        )
    existing.refresh_from_db()
    return existing, None


def charge(payment, data):
    """Talk to Stripe for a claimed payment; returns (status, body, headers, final)."""
    key = payment.stripe_idempotency_key
    common = {
        "amount": payment.amount,
        "currency": payment.currency,
        "description": payment.description or None,
        "metadata": {"payment_id": str(payment.pk), "user_id": str(payment.owner_id)},
        "idempotency_key": key,
    }
    try:
        if payment.method == Payment.Method.PAYMENT_METHOD:
            intent = stripe.PaymentIntent.create(
                payment_method=data["payment_method"],
                confirm=True,
                allowed_payment_method_types=["card"],
                **checkout.intent_options(payment, data),
                **common,
            )
            apply_intent(payment, intent)
        else:
            source = data.get("token")
            if payment.method == Payment.Method.CARD:
                card = {name: data[name] for name in CARD_FIELDS if data.get(name) is not None}
                token = stripe.Token.create(card=card, idempotency_key=f"{key}-token")
                source = token.id
                payment.stripe_token_id = token.id
                payment.save(update_fields=["stripe_token_id", "updated_at"])
            apply_charge(payment, stripe.Charge.create(source=source, **common))
    except stripe.CardError as error:
        if checkout.needs_customer_back(error):
            return checkout.authentication_required_response(payment, error)
        return card_error_response(payment, error)
    except stripe.InvalidRequestError as error:
        record_failure(payment, error.code or "invalid_request", "", provider_message(error))
        body = envelope(
            "invalid_request_error", payment.failure_code, payment.failure_message, error.param
        )
        body["error"]["payment"] = payment.pk
        return 400, body, {}, True
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        logger.error("Stripe refused our credentials for payment %s: %s", payment.pk, error)
        return unavailable("payments_misconfigured", "Payments are unavailable right now.")
    except (
        stripe.RateLimitError,
        stripe.APIConnectionError,
        stripe.APIError,
        stripe.IdempotencyError,
    ) as error:
        logger.warning("Stripe unavailable for payment %s: %s", payment.pk, type(error).__name__)
        return unavailable(
            "payment_provider_unavailable",
            "The payment provider is not answering. Nothing was confirmed; retry with the "
            "same Idempotency-Key and you will not be charged twice.",
        )
    from payments.serializers import PaymentSerializer  # serializers import services

    body = PaymentSerializer(payment).data
    if payment.status == Payment.Status.REQUIRES_ACTION:
        body = {**body, "client_secret": intent.client_secret}
        return 202, body, {}, True
    return 201, body, {}, True


def unavailable(code, message):
    body = envelope("api_error", code, message)
    return 503, body, {"Retry-After": RETRY_AFTER_SECONDS}, False


def provider_message(error):
    return getattr(error, "user_message", None) or str(error)


def card_error_response(payment, error):
    details = getattr(error, "error", None) or {}
    code = error.code if isinstance(error.code, str) else "card_declined"
    decline_code = field(details, "decline_code", "")
    record_failure(payment, code, decline_code, provider_message(error))
    body = envelope("card_error", code, payment.failure_message, getattr(error, "param", None))
    body["error"]["decline_code"] = decline_code or None
    body["error"]["payment"] = payment.pk
    return 400, body, {}, True


def record_failure(payment, code, decline_code, message):
    payment.status = Payment.Status.FAILED
    payment.failure_code = code[:64]
    payment.decline_code = decline_code[:64]
    payment.failure_message = (message or "")[:500]
    payment.save(
        update_fields=["status", "failure_code", "decline_code", "failure_message", "updated_at"]
    )


def apply_charge(payment, charge):
    payment.stripe_charge_id = charge.id
    details = field(field(charge, "payment_method_details", {}), "card", {})
    payment.card_brand = field(details, "brand", "")
    payment.card_last4 = field(details, "last4", "")
    payment.amount_refunded = field(charge, "amount_refunded", 0)
    if charge.status == "succeeded" and not field(charge, "captured", True):
        payment.status = Payment.Status.REQUIRES_CAPTURE  # an authorisation held
    elif charge.status == "succeeded":
        if field(charge, "amount_captured") is not None:
            payment.amount_captured = charge["amount_captured"]
        payment.status = refund_status(payment)
    elif charge.status == "failed":
        payment.status = checkout.failed_status(payment)
        payment.failure_code = field(charge, "failure_code", "")
        payment.failure_message = field(charge, "failure_message", "")
    payment.save()


def apply_intent(payment, intent):
    payment.stripe_payment_intent_id = intent.id
    if isinstance(field(intent, "latest_charge"), str):
        payment.stripe_charge_id = intent.latest_charge
    if intent.status == "succeeded":
        payment.status = Payment.Status.SUCCEEDED
        checkout.apply_captured(payment, intent)
    elif intent.status == "requires_capture":
        payment.status = Payment.Status.REQUIRES_CAPTURE
    elif intent.status == "requires_action":
        payment.status = Payment.Status.REQUIRES_ACTION
    elif intent.status == "canceled" and payment.status == Payment.Status.REQUIRES_CAPTURE:
        payment.status = Payment.Status.CANCELED  # the hold was released
    elif intent.status in ("requires_payment_method", "canceled"):
        error = field(intent, "last_payment_error", {})
        payment.status = checkout.failed_status(payment, intent.status)
        payment.failure_code = field(error, "code", intent.status)
        payment.decline_code = field(error, "decline_code", "")
        payment.failure_message = field(error, "message", "")
    checkout.record_card(payment, intent)
    payment.save()


def refund_status(payment):
    if payment.status == Payment.Status.CANCELED:
        return payment.status  # a released hold: its "refund" is the release
    # after a partial capture Stripe counts the released rest in amount_refunded
    released = 0 if payment.amount_captured is None else payment.amount - payment.amount_captured
    if payment.amount_refunded <= released:
        return Payment.Status.SUCCEEDED
    if payment.amount_refunded >= payment.amount:
        return Payment.Status.REFUNDED
    return Payment.Status.PARTIALLY_REFUNDED


def refund_payment(payment, amount=None, reason=None):
    """Refund all or part of a payment through Stripe; returns the updated payment."""
    refundable = payment.refundable_amount
    if refundable == 0:
        raise ApiError(
            f"Payment {payment.pk} is {payment.status}; there is nothing to refund.",
            code="payment_not_refundable",
        )
    amount = refundable if amount is None else amount
    if amount > refundable:
        raise ApiError(
            f"Refund amount {amount} is greater than the unrefunded amount {refundable}.",
            code="amount_too_large",
            param="amount",
        )
    try:
        refund = stripe.Refund.create(
            charge=payment.stripe_charge_id,
            amount=amount,
            reason=reason,
            # Same state, same amount: the same Stripe request, so a retry refunds once.
            idempotency_key=(
                f"{payment.stripe_idempotency_key}-refund-{payment.amount_refunded}-{amount}"
            ),
        )
    except stripe.InvalidRequestError as error:
        raise ApiError(
            provider_message(error), code=error.code or "invalid_request", param=error.param
        ) from error
    except stripe.StripeError as error:
        logger.warning("Stripe unavailable for refund of payment %s: %s", payment.pk, error)
        raise ApiError(
            "The payment provider is not answering; nothing was refunded. Retry later.",
            code="payment_provider_unavailable",
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from error
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        payment.amount_refunded = min(payment.amount, payment.amount_refunded + refund.amount)
        payment.status = refund_status(payment)
        payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    return payment


# --------------------------------------------------------------------- webhooks
SETTLEABLE = (
    Payment.Status.PENDING,
    Payment.Status.REQUIRES_ACTION,
    Payment.Status.REQUIRES_CAPTURE,
)


def payment_for(obj):
    """The payment a Stripe charge or intent belongs to: by our metadata, then by Stripe ids."""
    payment_id = field(field(obj, "metadata", {}), "payment_id")
    if payment_id and str(payment_id).isdigit():
        payment = Payment.objects.filter(pk=int(payment_id)).first()
        if payment:
            return payment
    ids = Q(stripe_charge_id=obj["id"]) | Q(stripe_payment_intent_id=obj["id"])
    if field(obj, "payment_intent"):
        ids |= Q(stripe_payment_intent_id=obj["payment_intent"])
    return Payment.objects.filter(ids).first()


def apply_event(event):
    """Update the payment an event is about; returns it (or None if it is not ours)."""
    obj = event["data"]["object"]
    payment = payment_for(obj)
    if payment is None:
        return None
    event_type = event["type"]
    if event_type == "charge.succeeded" and payment.status in SETTLEABLE:
        apply_charge(payment, obj)
    elif event_type == "charge.failed" and payment.status in SETTLEABLE:
        apply_charge(payment, obj)
    elif event_type == "charge.refunded":
        payment.amount_refunded = field(obj, "amount_refunded", 0)
        payment.status = refund_status(payment)
        payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    elif event_type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
        if payment.status in SETTLEABLE:
            apply_intent(payment, obj)
    elif event_type in checkout.INTENT_EVENTS and payment.status in checkout.SETTLES[event_type]:
        apply_intent(payment, obj)
    return payment


# ------------------------------------------------------------------ reconciliation
def reconcile_pending(older_than=timedelta(minutes=5), report=print):
    """Settle payments left pending (crash, timeout, outage) from Stripe's own records."""
    cutoff = timezone.now() - older_than
    pending = Payment.objects.filter(status=Payment.Status.PENDING, created_at__lt=cutoff)
    pending = pending.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=timezone.now()))
    settled = failed = errors = 0
    for payment in pending.order_by("created_at"):
        try:
            found = find_in_stripe(payment)
        except stripe.StripeError as error:
            errors += 1
            report(
                f"payment {payment.pk}: Stripe unavailable ({type(error).__name__}); kept pending"
            )
            continue
        if found is None:
            record_failure(payment, "not_charged", "", "Stripe has no charge for this payment.")
            failed += 1
        elif field(found, "object") == "payment_intent":
            apply_intent(payment, found)
            settled += 1
        else:
            apply_charge(payment, found)
            settled += 1
        payment.refresh_from_db()
        report(f"payment {payment.pk}: {payment.status}")
    return {"settled": settled, "failed": failed, "errors": errors}


def find_in_stripe(payment):
    if payment.stripe_payment_intent_id:
        return stripe.PaymentIntent.retrieve(payment.stripe_payment_intent_id)
    if payment.stripe_charge_id:
        return stripe.Charge.retrieve(payment.stripe_charge_id)
    since = int((payment.created_at - timedelta(minutes=5)).timestamp())
    intents = (Payment.Method.PAYMENT_METHOD, Payment.Method.PAYMENT_SHEET)
    resource = stripe.PaymentIntent if payment.method in intents else stripe.Charge
    for obj in resource.list(created={"gte": since}, limit=100).auto_paging_iter():
        if field(field(obj, "metadata", {}), "payment_id") == str(payment.pk):
            return obj
    return None
