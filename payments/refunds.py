"""Refunds: all or part of a payment, refunded at most once, recorded before Stripe is asked.

Three steps, so no database transaction is open while Stripe is called:
1. reserve: under a row lock on the payment, check the refundable amount (counting refunds
   still in flight) and write the Refund row `pending`, claimed;
2. call Stripe with the row's own idempotency key (`refund-<reference>`);
3. settle: payments.settlement applies Stripe's refund and the charge's figures.
A crash or lost answer between 2 and 3 leaves the row pending with its amount still
reserved; a retry with the same Idempotency-Key, a webhook or reconcile_payments settles it
from Stripe's records.
"""

import logging

import stripe
from django.db import IntegrityError, transaction
from django.db.models import Sum

from conventions.errors import ApiError, envelope
from payments import idempotency, settlement
from payments.answers import provider_message, refused, unavailable
from payments.models import Payment, Refund
from payments.serializers import PaymentSerializer, RefundRecordSerializer
from payments.stripe_objects import field

logger = logging.getLogger(__name__)


def refund_fingerprint(payment_id, data):
    return idempotency.request_fingerprint({"payment": payment_id, **data})


def is_replay(payment_id, data, idempotency_key):
    """Would this request be answered from the stored answer (no Stripe call)?"""
    rows = Refund.objects.filter(payment_id=payment_id, idempotency_key=idempotency_key)
    fingerprint = refund_fingerprint(payment_id, data)
    return bool(idempotency_key) and idempotency.is_replay(rows, fingerprint)


def create_refund(user, payment, data, idempotency_key=""):
    """Refund all or part of a payment; returns (HTTP status, body, headers)."""
    fingerprint = refund_fingerprint(payment.pk, data)
    refund, replay = claim_refund(user, payment, data, idempotency_key, fingerprint)
    if replay:
        return replay
    claim, answer = refund.locked_until, None
    try:
        answer = execute_refund(refund)
    finally:  # whatever happened, the claim is released; a final answer is stored
        status, body, _, final = answer or (None, None, None, False)
        idempotency.store_answer(refund, claim, status, body, final)
    return answer[:3]


def claim_refund(user, payment, data, idempotency_key, fingerprint):
    if idempotency_key:
        existing = Refund.objects.filter(payment=payment, idempotency_key=idempotency_key).first()
        if existing:
            return resume_refund(existing, fingerprint)
    try:
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if idempotency_key:
                # A concurrent first use of this key committed while we waited for the lock.
                existing = locked.refunds.filter(idempotency_key=idempotency_key).first()
                if existing:
                    return resume_refund(existing, fingerprint)
            amount = refundable_amount(locked, data.get("amount"))
            refund = Refund.objects.create(
                payment=locked,
                requested_by=user,
                amount=amount,
                reason=data.get("reason") or "",
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                locked_until=idempotency.new_claim(),
            )
    except IntegrityError:  # the same key, inserted between our look-up and our insert
        existing = Refund.objects.get(payment=payment, idempotency_key=idempotency_key)
        return resume_refund(existing, fingerprint)
    return refund, None


def resume_refund(existing, fingerprint):
    """A refund request repeating an Idempotency-Key: replay, refuse, or take it over."""
    return idempotency.resume_request(
        existing,
        fingerprint,
        too_old=(
            not existing.stripe_refund_id and idempotency.outside_stripe_window(existing.created_at)
        ),
        noun="refund",
        reconciliation=(
            "This refund is still being settled; it will be reconciled with Stripe. "
            "Check GET /api/payments/<id>/ before refunding again.",
            "refund_needs_reconciliation",
        ),
    )


def refundable_amount(payment, requested):
    """The amount to refund, checked against what is left; call with the payment locked.

    Left = amount - Stripe's amount_refunded - refunds of ours Stripe has not confirmed
    yet (rows still pending without a Stripe id). Over-reserving for a moment (a lost
    answer Stripe did execute) is safe; Stripe refuses a true over-refund anyway.
    """
    if payment.status not in settlement.PAID or not payment.stripe_charge_id:
        raise ApiError(
            f"Payment {payment.pk} is {payment.status}; there is nothing to refund.",
            code="payment_not_refundable",
        )
    in_flight = payment.refunds.filter(
        status__in=settlement.UNSETTLED_REFUNDS, stripe_refund_id=""
    ).aggregate(total=Sum("amount"))["total"]
    left = payment.amount - payment.amount_refunded - (in_flight or 0)
    if left <= 0:
        raise ApiError(
            f"Payment {payment.pk} has nothing left to refund (refunded or being refunded).",
            code="payment_not_refundable",
        )
    amount = left if requested is None else requested
    if amount > left:
        raise ApiError(
            f"Refund amount {amount} is greater than the amount left to refund {left}.",
            code="amount_too_large",
            param="amount",
        )
    return amount


def execute_refund(refund):
    """Talk to Stripe for a claimed refund; returns (status, body, headers, final)."""
    payment = refund.payment
    if refund.stripe_refund_id or refund.status in (Refund.Status.FAILED, Refund.Status.CANCELED):
        # Settled meanwhile (webhook, reconcile): answer from the record, never ask again.
        return refund_answer(refund)
    try:
        obj = stripe.Refund.create(
            charge=payment.stripe_charge_id,
            amount=refund.amount,
            reason=refund.reason or None,
            metadata={
                "refund_reference": str(refund.reference),
                "refund_id": str(refund.pk),
                "payment_id": str(payment.pk),
            },
            # The charge with its refunds, in the same answer: Stripe's cumulative figures.
            expand=["charge.refunds"],
            idempotency_key=refund.stripe_idempotency_key,
        )
    except stripe.InvalidRequestError as error:
        # Stripe refused (e.g. refunded elsewhere meanwhile): nothing was refunded.
        settlement.settle_refund_failure(
            refund, error.code or "invalid_request", provider_message(error)
        )
        refund.refresh_from_db()
        return refused(
            "refund", refund.pk, refund.failure_reason, refund.failure_message, error.param
        )
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        logger.error("Stripe refused our credentials for refund %s: %s", refund.pk, error)
        return unavailable("payments_misconfigured", "Refunds are unavailable right now.")
    except stripe.StripeError as error:
        logger.warning("Stripe unavailable for refund %s: %s", refund.pk, type(error).__name__)
        return unavailable(
            "payment_provider_unavailable",
            "The payment provider is not answering. The refund is recorded as pending; retry "
            "with the same Idempotency-Key and it will not be refunded twice.",
        )
    charge = field(obj, "charge")
    settlement.settle_refunds(payment, [obj], charge if not isinstance(charge, str) else None)
    refund.refresh_from_db()
    return refund_answer(refund)


def refund_answer(refund):
    if refund.status in (Refund.Status.FAILED, Refund.Status.CANCELED) and not (
        refund.stripe_refund_id
    ):
        body = envelope(
            "invalid_request_error",
            refund.failure_reason or "refund_failed",
            refund.failure_message or "Stripe did not make this refund.",
        )
        body["error"]["refund"] = refund.pk
        return 400, body, {}, True
    payment = Payment.objects.get(pk=refund.payment_id)
    body = {**PaymentSerializer(payment).data, "refund": RefundRecordSerializer(refund).data}
    return 200, body, {}, True
