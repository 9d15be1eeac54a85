"""Stripe's webhook events: each applied once, in any order, through settlement.

Every application is settlement's forward-only SET from Stripe's figures, so an event
applied twice (two deliveries racing) or late changes nothing; the StripeEvent row only
saves the work of applying it again. The event is recorded after it is applied: if Stripe
cannot be asked (a refund event makes us fetch the charge's refunds), the delivery fails
with 503 and Stripe delivers it again. payments.webhooks verifies and shape-checks the
delivery before anything here runs.
"""

import logging

import stripe
from django.db import IntegrityError, transaction
from django.db.models import Q

from conventions.errors import ApiError
from payments import settlement
from payments.answers import RETRY_AFTER_SECONDS
from payments.models import Payment, StripeEvent
from payments.stripe_objects import charge_refunds, field, metadata, object_id

logger = logging.getLogger(__name__)

REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
CHARGE_EVENTS = {"charge.succeeded", "charge.failed", "charge.captured"}
INTENT_EVENTS = {
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
}


def record_event(event):
    """Apply a webhook event once; returns True if it had been processed already."""
    if StripeEvent.objects.filter(event_id=event["id"]).exists():
        return True
    try:
        payment = apply_event(event)
    except stripe.InvalidRequestError as error:
        # Signed, but about an object our Stripe account does not have (another account or
        # mode): a clear 4xx, not a 503 that would have Stripe retry it for days.
        raise ApiError(
            "The event is about an object Stripe does not know on this account.",
            code="event_object_unknown",
        ) from error
    except stripe.StripeError as error:
        logger.warning("Stripe unavailable while applying %s: %s", event["id"], error)
        raise ApiError(
            "Cannot confirm this event with Stripe right now; deliver it again later.",
            code="payment_provider_unavailable",
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        ) from error
    try:
        with transaction.atomic():
            StripeEvent.objects.create(event_id=event["id"], type=event["type"], payment=payment)
    except IntegrityError:
        return True  # a concurrent delivery of the same event recorded it first
    return False


def apply_event(event):
    """Settle the payment an event is about; returns it (or None if it is not ours)."""
    obj = event["data"]["object"]
    event_type = event["type"]
    if event_type in REFUND_EVENTS and field(obj, "object") == "refund":
        payment = payment_for_refund(obj)
        if payment is None:
            return None
        payment = settlement.settle_refunds(payment, [obj])
        # A refund's object does not carry the charge's cumulative figure: ask Stripe.
        return settlement.sync_refunds(payment)
    payment = payment_for(obj)  # read just now: settlement need not read it again
    if payment is None:
        return None
    if event_type in CHARGE_EVENTS:
        return settlement.settle_charge(payment, obj, fresh=True)[0]
    if event_type == "charge.refunded":
        if charge_refunds(obj) is not None:
            return settlement.settle_charge(payment, obj, fresh=True)[0]  # older: ignored
        # this API version sends the charge without its refunds: fetch them
        return settlement.sync_refunds(settlement.settle_charge(payment, obj)[0])
    if event_type in INTENT_EVENTS:
        return settlement.settle_intent(payment, obj, fresh=True)[0]
    return payment


def payment_for(obj):
    """The payment a Stripe charge or intent belongs to: by our metadata, then by Stripe ids."""
    payment = _by_metadata(obj)
    if payment is not None:
        return payment
    ids = Q(stripe_charge_id=obj["id"]) | Q(stripe_payment_intent_id=obj["id"])
    if field(obj, "payment_intent"):
        ids |= Q(stripe_payment_intent_id=object_id(obj["payment_intent"]))
    return Payment.objects.filter(ids).first()


def payment_for_refund(obj):
    payment = _by_metadata(obj)
    if payment is not None:
        return payment
    charge_id = object_id(field(obj, "charge"))
    return Payment.objects.filter(stripe_charge_id=charge_id).first() if charge_id else None


def _by_metadata(obj):
    payment_id = metadata(obj, "payment_id")
    if not (payment_id.isascii() and payment_id.isdigit()):
        return None
    try:
        return Payment.objects.get(pk=int(payment_id))
    except Payment.DoesNotExist:
        return None
