"""Holds (manual capture): take held funds, release them, and let old ones expire as
Stripe does. Staff only; every call carries a key derived from the payment's row."""

from datetime import timedelta

import stripe
from django.conf import settings
from django.utils import timezone

from conventions.errors import ApiError
from payments import settlement
from payments.answers import provider_unavailable, stripe_refused
from payments.models import Payment


def _staff_intent_call(payment, call, what):
    try:
        return call()
    except stripe.InvalidRequestError as error:
        raise stripe_refused(error) from error
    except stripe.StripeError as error:
        raise provider_unavailable(error, f"{what} of payment {payment.pk}") from error


def capture_payment(payment, amount=None):
    """Take held funds: all, or a smaller amount (the rest is released)."""
    if payment.status != Payment.Status.REQUIRES_CAPTURE:
        raise ApiError(
            f"Payment {payment.pk} is {payment.status}; only held payments can be captured.",
            code="payment_not_capturable",
        )
    if amount is not None and amount > payment.amount:
        raise ApiError(
            f"The amount to capture ({amount}) exceeds the held amount ({payment.amount}).",
            code="amount_too_large",
            param="amount",
        )
    params = {} if amount is None else {"amount_to_capture": amount}
    intent = _staff_intent_call(
        payment,
        lambda: stripe.PaymentIntent.capture(
            payment.stripe_payment_intent_id,
            idempotency_key=f"{payment.stripe_idempotency_key}-capture",
            **params,
        ),
        "capture",
    )
    return settlement.settle_intent(payment, intent)[0]


def cancel_payment(payment):
    """Release held funds (or abandon an unconfirmed sheet payment)."""
    cancelable = (Payment.Status.REQUIRES_CAPTURE, Payment.Status.PENDING)
    if payment.status not in cancelable or not payment.stripe_payment_intent_id:
        raise ApiError(
            f"Payment {payment.pk} is {payment.status}; only held payments can be canceled.",
            code="payment_not_cancelable",
        )
    intent = _staff_intent_call(
        payment,
        lambda: stripe.PaymentIntent.cancel(
            payment.stripe_payment_intent_id,
            idempotency_key=f"{payment.stripe_idempotency_key}-cancel",
        ),
        "cancel",
    )
    return settlement.settle_intent(payment, intent)[0]


def expire_holds(report=print, now=None):
    """Holds older than PAYMENTS_HOLD_DAYS are released, as Stripe releases them (7 days for
    customer-initiated card payments, docs.stripe.com/payments/place-a-hold-on-a-payment-method;
    Visa merchant-initiated holds expire sooner and arrive as payment_intent.canceled): a hold
    Stripe already canceled is recorded; one still open is canceled. For cron, via
    `reconcile_payments`."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.PAYMENTS_HOLD_DAYS)
    held = Payment.objects.filter(status=Payment.Status.REQUIRES_CAPTURE, created_at__lt=cutoff)
    expired = errors = 0
    for payment in held.order_by("created_at"):
        try:
            intent = stripe.PaymentIntent.retrieve(payment.stripe_payment_intent_id)
            if intent.status == "requires_capture":
                intent = stripe.PaymentIntent.cancel(
                    intent.id,
                    cancellation_reason="abandoned",
                    idempotency_key=f"{payment.stripe_idempotency_key}-cancel",
                )
        except stripe.StripeError as error:
            errors += 1
            report(f"payment {payment.pk}: Stripe unavailable ({type(error).__name__}); kept")
            continue
        payment = settlement.settle_intent(payment, intent)[0]
        expired += 1
        report(f"payment {payment.pk}: hold released ({payment.status})")
    return {"expired": expired, "errors": errors}
