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
import uuid
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from backend.api import ApiError, envelope
from payments import checkout
from payments.models import Payment, Refund, StripeEvent

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
    try:
        status, body, headers, final = charge(payment, data)
    except BaseException:
        # Whatever charge() raised, the row stays pending (reconcile_payments settles it)
        # but never locked: a retry with the same Idempotency-Key may claim it again.
        Payment.objects.filter(pk=payment.pk).update(locked_until=None)
        raise
    # One write settles the payment: what Stripe answered, the claim released and, when
    # final, the answer a retry of the same request replays. charge() saved nothing.
    updates = {name: getattr(payment, name) for name in SETTLE_FIELDS}
    updates.update(locked_until=None, updated_at=payment.updated_at)
    if final:  # a retry of the same request gets the same answer
        updates.update(response_status=status, response_body=body)
    Payment.objects.filter(pk=payment.pk).update(**updates)
    return status, body, headers


# What charge() may change on a claimed payment (create_payment writes them, once).
SETTLE_FIELDS = (
    "status",
    "amount_captured",
    "stripe_token_id",
    "stripe_charge_id",
    "stripe_payment_intent_id",
    "card_brand",
    "card_last4",
    "amount_refunded",
    "failure_code",
    "decline_code",
    "failure_message",
)


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
    return resume_request(
        existing,
        fingerprint,
        now,
        # Stripe forgets idempotency keys after 24 hours: calling it again could charge twice.
        too_old=existing.created_at < now - STRIPE_IDEMPOTENCY_WINDOW,
        noun="payment",
        reconciliation=(
            "This payment is still being settled; it will be reconciled with Stripe. "
            "Check GET /api/payments/ before paying again.",
            "payment_needs_reconciliation",
        ),
    )


def resume_request(existing, fingerprint, now, too_old, noun, reconciliation):
    """A request repeating an Idempotency-Key (a payment or refund row): replay, refuse, or
    take the row over; returns (row, replayed answer or None)."""
    if not hmac.compare_digest(existing.request_fingerprint, fingerprint):
        raise ApiError(
            "This Idempotency-Key was already used with a different request body. Use a new "
            f"key for a new {noun}.",
            code="idempotency_key_reused",
            type="idempotency_error",
            status_code=422,
        )
    if existing.response_body is not None:
        headers = {"Idempotent-Replayed": "true"}
        return existing, (existing.response_status, existing.response_body, headers)
    if too_old:
        message, code = reconciliation
        raise ApiError(message, code=code, type="idempotency_error", status_code=409)
    claimed = (
        type(existing)
        .objects.filter(pk=existing.pk, response_body__isnull=True)
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
    """Talk to Stripe for a claimed payment; returns (status, body, headers, final).

    Sets the outcome on `payment` without saving it (create_payment writes it once), and
    runs outside any transaction: no lock is held while Stripe is called.
    """
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
                # not with off_session: nobody is there to come back
                return_url=None if data.get("off_session") else data.get("return_url"),
                **checkout.intent_options(payment, data),
                **common,
            )
            apply_intent(payment, intent, save=False)
        else:
            source = data.get("token")
            if payment.method == Payment.Method.CARD:
                card = {name: data[name] for name in CARD_FIELDS if data.get(name) is not None}
                token = stripe.Token.create(card=card, idempotency_key=f"{key}-token")
                source = token.id
                payment.stripe_token_id = token.id  # the token's own idempotency key replays it
            apply_charge(payment, stripe.Charge.create(source=source, **common), save=False)
    except stripe.CardError as error:
        if checkout.needs_customer_back(error):
            return checkout.authentication_required_response(payment, error)
        return card_error_response(payment, error)
    except stripe.InvalidRequestError as error:
        record_failure(
            payment, error.code or "invalid_request", "", provider_message(error), save=False
        )
        return refused("payment", payment.pk, payment.failure_code, payment.failure_message, error)
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
    finally:  # the instant the settle write stores, and the body shows
        payment.updated_at = timezone.now()
    from payments.serializers import PaymentSerializer  # serializers import services

    body = PaymentSerializer(payment).data
    if payment.status == Payment.Status.REQUIRES_ACTION:
        next_action = field(intent, "next_action")
        body = {
            **body,
            "client_secret": intent.client_secret,
            # redirect_to_url (given a return_url) or use_stripe_sdk: what the app does next
            "next_action": next_action.to_dict() if next_action else None,
        }
        return 202, body, {}, True
    return 201, body, {}, True


def refused(record, pk, code, message, error):
    """Stripe refused the request (invalid_request_error): a final 400 naming our record."""
    body = envelope("invalid_request_error", code, message, error.param)
    body["error"][record] = pk
    return 400, body, {}, True


def unavailable(code, message):
    body = envelope("api_error", code, message)
    return 503, body, {"Retry-After": RETRY_AFTER_SECONDS}, False


def provider_message(error):
    return getattr(error, "user_message", None) or str(error)


def card_error_response(payment, error):
    details = getattr(error, "error", None) or {}
    code = error.code if isinstance(error.code, str) else "card_declined"
    decline_code = field(details, "decline_code", "")
    record_failure(payment, code, decline_code, provider_message(error), save=False)
    body = envelope("card_error", code, payment.failure_message, getattr(error, "param", None))
    body["error"]["decline_code"] = decline_code or None
    body["error"]["payment"] = payment.pk
    return 400, body, {}, True


def record_failure(payment, code, decline_code, message, save=True):
    payment.status = Payment.Status.FAILED
    payment.failure_code = code[:64]
    payment.decline_code = decline_code[:64]
    payment.failure_message = (message or "")[:500]
    fields = ["status", "failure_code", "decline_code", "failure_message", "updated_at"]
    if save:
        payment.save(update_fields=fields)


def apply_charge(payment, charge, save=True):
    payment.stripe_charge_id = charge["id"]
    if isinstance(field(charge, "payment_intent"), str):  # a charge.succeeded for an intent
        payment.stripe_payment_intent_id = charge["payment_intent"]
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
    if save:
        payment.save()


def apply_intent(payment, intent, save=True):
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
    if save:
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


# ---------------------------------------------------------------------- refunds
# How far a Stripe refund has got. A refund only ever moves up: pending/requires_action ->
# succeeded -> failed (a card refund can fail after succeeding: test card 4000000000005126),
# or pending/requires_action -> failed/canceled.
REFUND_RANK = {"pending": 0, "requires_action": 0, "succeeded": 1, "failed": 2, "canceled": 2}
UNSETTLED_REFUNDS = (Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION)
REFUNDED_FAMILY = (
    Payment.Status.SUCCEEDED,
    Payment.Status.PARTIALLY_REFUNDED,
    Payment.Status.REFUNDED,
)


def refund_version(refunds):
    """A number that grows with every change of a charge's refunds, and never shrinks.

    Refunds are only ever added to a charge, and each refund's status only moves up
    REFUND_RANK, so (number of refunds + sum of their ranks) strictly increases with each
    change. A snapshot of the charge (a webhook, an answer, a fetch) with a lower version
    than the one applied is older: it never moves the ledger back, whatever order the
    snapshots arrive in. Stripe's amount_refunded itself is not monotonic (a failed refund
    gives its amount back), so it cannot serve as the clock.
    """
    return sum(1 + REFUND_RANK.get(field(obj, "status", "pending"), 0) for obj in refunds)


def refund_fingerprint(payment_id, data):
    return request_fingerprint({"payment": payment_id, **data})


def is_payment_replay(user, data, idempotency_key):
    """Would this request be answered from the stored answer (no Stripe call)?"""
    return (
        bool(idempotency_key)
        and Payment.objects.filter(
            owner=user,
            idempotency_key=idempotency_key,
            request_fingerprint=request_fingerprint(data),
            response_body__isnull=False,
        ).exists()
    )


def is_refund_replay(payment_id, data, idempotency_key):
    return (
        bool(idempotency_key)
        and Refund.objects.filter(
            payment_id=payment_id,
            idempotency_key=idempotency_key,
            request_fingerprint=refund_fingerprint(payment_id, data),
            response_body__isnull=False,
        ).exists()
    )


def create_refund(user, payment, data, idempotency_key=""):
    """Refund all or part of a payment; returns (HTTP status, body, headers).

    Three steps, so no database transaction is open while Stripe is called:
    1. reserve: under a row lock on the payment, check the refundable amount (counting
       refunds still in flight) and write the Refund row `pending`;
    2. call Stripe with the row's own idempotency key (`refund-<reference>`);
    3. settle: under the lock again, set the figures from Stripe's answer.
    A crash or lost answer between 2 and 3 leaves the row pending with its amount still
    reserved; a retry with the same Idempotency-Key, a webhook or reconcile_payments
    settles it from Stripe's records.
    """
    fingerprint = refund_fingerprint(payment.pk, data)
    refund, replay = claim_refund(user, payment, data, idempotency_key, fingerprint)
    if replay:
        return replay
    updates = {"locked_until": None}
    try:
        status, body, headers, final = execute_refund(refund)
        if final:
            updates.update(response_status=status, response_body=body)
    finally:
        Refund.objects.filter(pk=refund.pk).update(**updates)
    return status, body, headers


def claim_refund(user, payment, data, idempotency_key, fingerprint):
    now = timezone.now()
    if idempotency_key:
        existing = Refund.objects.filter(payment=payment, idempotency_key=idempotency_key).first()
        if existing:
            return resume_refund(existing, fingerprint, now)
    try:
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if idempotency_key:
                # A concurrent first use of this key committed while we waited for the lock.
                existing = locked.refunds.filter(idempotency_key=idempotency_key).first()
                if existing:
                    return resume_refund(existing, fingerprint, now)
            amount = refundable_amount(locked, data.get("amount"))
            refund = Refund.objects.create(
                payment=locked,
                requested_by=user,
                amount=amount,
                reason=data.get("reason") or "",
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
                locked_until=now + timedelta(seconds=CLAIM_SECONDS),
            )
    except IntegrityError:  # the same key, inserted between our look-up and our insert
        existing = Refund.objects.get(payment=payment, idempotency_key=idempotency_key)
        return resume_refund(existing, fingerprint, now)
    return refund, None


def resume_refund(existing, fingerprint, now):
    """A refund request repeating an Idempotency-Key: replay, refuse, or take it over."""
    return resume_request(
        existing,
        fingerprint,
        now,
        too_old=(
            not existing.stripe_refund_id and existing.created_at < now - STRIPE_IDEMPOTENCY_WINDOW
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
    if payment.status not in REFUNDED_FAMILY or not payment.stripe_charge_id:
        raise ApiError(
            f"Payment {payment.pk} is {payment.status}; there is nothing to refund.",
            code="payment_not_refundable",
        )
    in_flight = payment.refunds.filter(status__in=UNSETTLED_REFUNDS, stripe_refund_id="").aggregate(
        total=Sum("amount")
    )["total"]
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
        Refund.objects.filter(pk=refund.pk).update(
            status=Refund.Status.FAILED,
            failure_reason=(error.code or "invalid_request")[:64],
            failure_message=provider_message(error)[:500],
        )
        refund.refresh_from_db()
        return refused("refund", refund.pk, refund.failure_reason, refund.failure_message, error)
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
    settle_from_stripe(payment, [obj], charge if not isinstance(charge, str) else None)
    refund.refresh_from_db()
    return refund_answer(refund)


def refund_answer(refund):
    from payments.serializers import PaymentSerializer, RefundRecordSerializer

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


def charge_refunds(charge):
    """The charge's complete list of refunds, or None if this snapshot does not carry it.

    Stripe includes `refunds` on a charge only when expanded, and lists at most 10.
    """
    refunds = field(charge, "refunds")
    if refunds is None or isinstance(refunds, str) or field(refunds, "has_more", False):
        return None
    data = field(refunds, "data")
    return list(data) if data is not None else None


def settle_from_stripe(payment, refund_objects=(), charge=None):
    """Apply Stripe's records under the payment's row lock; returns the payment.

    `refund_objects` update their Refund rows (only ever forwards); a `charge` whose
    refund list is known sets the payment's figures unless it is older than the last
    applied (refund_version).
    """
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        for obj in refund_objects:
            upsert_refund(locked, obj)
        listed = charge_refunds(charge) if charge is not None else None
        if listed is not None:
            version = refund_version(listed)
            if version >= locked.refund_version:
                locked.refund_version = version
                locked.amount_refunded = field(charge, "amount_refunded", 0)
                if locked.status in REFUNDED_FAMILY:
                    locked.status = refund_status(locked)
                locked.save(
                    update_fields=["refund_version", "amount_refunded", "status", "updated_at"]
                )
                for obj in listed:
                    upsert_refund(locked, obj)
    return locked


def upsert_refund(payment, obj):
    """The Refund row for a Stripe refund, moved forward to Stripe's status (never back)."""
    refund_id = field(obj, "id")
    row = payment.refunds.filter(stripe_refund_id=refund_id).first()
    if row is None:
        reference = field(field(obj, "metadata", {}), "refund_reference")
        try:
            reference = uuid.UUID(str(reference)) if reference else None
        except ValueError:
            reference = None
        if reference:
            row = payment.refunds.filter(reference=reference, stripe_refund_id="").first()
    status = field(obj, "status", "pending")
    if row is None:  # made outside this API (e.g. the Dashboard): record it too
        return Refund.objects.create(
            payment=payment,
            amount=field(obj, "amount", 0),
            reason=field(obj, "reason", "") or "",
            status=status,
            stripe_refund_id=refund_id,
            failure_reason=field(obj, "failure_reason", "") or "",
        )
    forward = REFUND_RANK.get(status, 0) > REFUND_RANK.get(row.status, 0)
    if forward or not row.stripe_refund_id:
        row.stripe_refund_id = refund_id
        row.status = status
        row.failure_reason = (field(obj, "failure_reason", "") or "")[:64]
        row.save(update_fields=["stripe_refund_id", "status", "failure_reason", "updated_at"])
    return row


def fetch_charge(charge_id):
    """The charge with its complete refund list, from Stripe (GETs: no idempotency key)."""
    charge = stripe.Charge.retrieve(charge_id, expand=["refunds"])
    if charge_refunds(charge) is None:
        # More than Stripe lists inline: page through them all, then re-read the charge,
        # so its amount is at least as new as the list (the version).
        refunds = list(stripe.Refund.list(charge=charge_id, limit=100).auto_paging_iter())
        charge = stripe.Charge.retrieve(charge_id)
        charge = {**charge, "refunds": {"data": refunds, "has_more": False}}
    return charge


def sync_refunds(payment):
    """Set a payment's refund figures from Stripe's current records."""
    if not payment.stripe_charge_id:
        return payment
    return settle_from_stripe(payment, charge=fetch_charge(payment.stripe_charge_id))


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


REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}


def record_event(event):
    """Apply a webhook event once; returns True if it had been processed already.

    Every application is a SET from Stripe's figures guarded by refund_version and the
    refund status order, so it is harmless to apply an event twice (two deliveries
    racing) or late; the StripeEvent row only saves the work of re-applying. The event
    is recorded after it is applied: if Stripe cannot be asked (a refund event makes us
    fetch the charge) the delivery fails with 503 and Stripe delivers it again.
    """
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


def payment_for_refund(obj):
    payment_id = field(field(obj, "metadata", {}), "payment_id")
    if payment_id and str(payment_id).isdigit():
        payment = Payment.objects.filter(pk=int(payment_id)).first()
        if payment:
            return payment
    charge = field(obj, "charge")
    charge_id = charge if isinstance(charge, str) else field(charge, "id")
    return Payment.objects.filter(stripe_charge_id=charge_id).first() if charge_id else None


def apply_event(event):
    """Update the payment an event is about; returns it (or None if it is not ours)."""
    obj = event["data"]["object"]
    event_type = event["type"]
    if event_type in REFUND_EVENTS and field(obj, "object") == "refund":
        payment = payment_for_refund(obj)
        if payment is None:
            return None
        settle_from_stripe(payment, [obj])
        # A refund's object does not carry the charge's cumulative figure: ask Stripe.
        return sync_refunds(payment)
    payment = payment_for(obj)
    if payment is None:
        return None
    if event_type == "charge.succeeded" and payment.status in SETTLEABLE:
        apply_charge(payment, obj)
    elif event_type == "charge.failed" and payment.status in SETTLEABLE:
        apply_charge(payment, obj)
    elif event_type == "charge.refunded":
        if not payment.stripe_charge_id:
            return payment
        if charge_refunds(obj) is not None:
            settle_from_stripe(payment, charge=obj)  # an older snapshot is ignored
        else:  # this API version sends the charge without its refunds: fetch them
            sync_refunds(payment)
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
        if payment.amount_refunded:  # refunded at Stripe meanwhile: record those refunds too
            try:
                payment = sync_refunds(payment)
            except stripe.StripeError:
                report(f"payment {payment.pk}: refunds not fetched; their webhooks will bring them")
        report(f"payment {payment.pk}: {payment.status}")
    return {"settled": settled, "failed": failed, "errors": errors}


def reconcile_refunds(older_than=timedelta(minutes=5), report=print):
    """Settle refunds left pending (lost answer, crash, outage, Stripe still processing)."""
    now = timezone.now()
    pending = Refund.objects.filter(
        status__in=UNSETTLED_REFUNDS, created_at__lt=now - older_than
    ).filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    settled = failed = errors = 0
    for refund in pending.select_related("payment").order_by("created_at"):
        payment = refund.payment
        try:
            if refund.stripe_refund_id:
                found = stripe.Refund.retrieve(refund.stripe_refund_id)
            else:
                found = find_refund_in_stripe(refund)
            if found is not None:
                settle_from_stripe(payment, [found])
                sync_refunds(payment)
        except stripe.StripeError as error:
            errors += 1
            report(f"refund {refund.pk}: Stripe unavailable ({type(error).__name__}); kept pending")
            continue
        if found is None:
            Refund.objects.filter(pk=refund.pk, stripe_refund_id="").update(
                status=Refund.Status.FAILED,
                failure_reason="not_refunded",
                failure_message="Stripe has no refund for this request.",
            )
            failed += 1
        else:
            settled += 1
        refund.refresh_from_db()
        report(f"refund {refund.pk}: {refund.status}")
    return {"settled": settled, "failed": failed, "errors": errors}


def find_refund_in_stripe(refund):
    """The Stripe refund made for this row (matched by our reference), or None."""
    listing = stripe.Refund.list(charge=refund.payment.stripe_charge_id, limit=100)
    for obj in listing.auto_paging_iter():
        if field(field(obj, "metadata", {}), "refund_reference") == str(refund.reference):
            return obj
    return None


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
