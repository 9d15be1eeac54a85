"""Taking a payment: charge exactly once, record everything, never keep a card number.

Four ways in, one way through. `create_payment` takes raw card fields (tokenised here,
test mode and the sandbox), a Stripe token from the mobile SDK, or a PaymentMethod (a
saved card, off-session, or held with `capture: false`); `create_sheet` prepares a
PaymentSheet, which the SDK confirms with Stripe itself. Each writes its Payment row
(pending, claimed) before Stripe is called, calls Stripe with the row's idempotency key and
no transaction open, and hands Stripe's answer to payments.settlement, which writes the
outcome and the stored answer in one UPDATE.

The stripe library is always called through the `stripe` module at call time
(`stripe.Token.create`, not `from stripe import Token`), so tests can swap a resource
(`mock.patch('stripe.Token', MockToken)`) or the provider beneath the library
(`fake_stripe()`).
"""

import logging

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction

from conventions.errors import ApiError, envelope
from payments import customers, idempotency, settlement
from payments.answers import provider_message, provider_unavailable, refused, unavailable
from payments.models import Payment
from payments.serializers import CARD_FIELDS, PaymentSerializer
from payments.stripe_objects import field

logger = logging.getLogger(__name__)


def method_of(data):
    if data.get("sheet"):
        return Payment.Method.PAYMENT_SHEET
    if data.get("payment_method"):
        return Payment.Method.PAYMENT_METHOD
    if data.get("token"):
        return Payment.Method.TOKEN
    return Payment.Method.CARD


def is_replay(user, data, idempotency_key):
    """Would this request be answered from the stored answer (no Stripe call)?"""
    rows = Payment.objects.filter(owner=user, idempotency_key=idempotency_key)
    fingerprint = idempotency.request_fingerprint(data)
    return bool(idempotency_key) and idempotency.is_replay(rows, fingerprint)


def claim_payment(user, data, idempotency_key):
    """Write the pending row first (or find the earlier one for this Idempotency-Key);
    returns (row, replayed answer or None). The row's `locked_until` is our claim."""
    fields = {
        "owner": user,
        "amount": data["amount"],
        "currency": data["currency"],
        "description": data.get("description", ""),
        "method": method_of(data),
        "capture": data.get("capture", True),
        "idempotency_key": idempotency_key,
        "request_fingerprint": idempotency.request_fingerprint(data),
        "locked_until": idempotency.new_claim(),
    }
    if not idempotency_key:
        return Payment.objects.create(**fields), None
    try:
        with transaction.atomic():
            return Payment.objects.create(**fields), None
    except IntegrityError:
        pass  # an earlier request used this key
    existing = Payment.objects.get(owner=user, idempotency_key=idempotency_key)
    return idempotency.resume_request(
        existing,
        fields["request_fingerprint"],
        too_old=idempotency.outside_stripe_window(existing.created_at),
        noun="payment",
        reconciliation=(
            "This payment is still being settled; it will be reconciled with Stripe. "
            "Check GET /api/payments/ before paying again.",
            "payment_needs_reconciliation",
        ),
    )


# ------------------------------------------------------------------ POST /api/payments/
def create_payment(user, data, idempotency_key=""):
    """Charge the caller; returns (HTTP status, body, headers) for the API to answer with."""
    payment, replay = claim_payment(user, data, idempotency_key)
    if replay:
        return replay
    claim = payment.locked_until
    try:
        status, body, headers, _ = charge(payment, data, claim)
    except BaseException:
        # Whatever happened, the row stays pending (reconcile_payments settles it) but is
        # not left claimed: a retry with the same Idempotency-Key may take it again.
        idempotency.release_claim(payment, claim)
        raise
    return status, body, headers


def charge(payment, data, claim):
    """Talk to Stripe for a claimed payment and settle it; returns the answer
    (status, body, headers, final). No transaction is open while Stripe is called."""
    key = payment.stripe_idempotency_key
    common = {
        "amount": payment.amount,
        "currency": payment.currency,
        "description": payment.description or None,
        "metadata": {"payment_id": str(payment.pk), "user_id": str(payment.owner_id)},
        "idempotency_key": key,
    }
    token_id = ""
    try:
        if payment.method == Payment.Method.PAYMENT_METHOD:
            intent = stripe.PaymentIntent.create(
                payment_method=data["payment_method"],
                confirm=True,
                allowed_payment_method_types=["card"],
                # not with off_session: nobody is there to come back
                return_url=None if data.get("off_session") else data.get("return_url"),
                **intent_options(payment, data),
                **common,
            )
            return settlement.settle_intent(
                payment, intent, claim=claim, answer=lambda row: paid_answer(row, intent)
            )[1]
        source = data.get("token")
        if payment.method == Payment.Method.CARD:
            card = {name: data[name] for name in CARD_FIELDS if data.get(name) is not None}
            token = stripe.Token.create(card=card, idempotency_key=f"{key}-token")
            source = token_id = token.id  # the token's own idempotency key replays it
        charged = stripe.Charge.create(source=source, **common)
        return settlement.settle_charge(
            payment, charged, token_id=token_id, claim=claim, answer=paid_answer
        )[1]
    except stripe.CardError as error:
        context = {"token_id": token_id, "claim": claim}
        if needs_customer_back(error):
            return authentication_required(payment, error, context)
        return declined(payment, error, context)
    except stripe.InvalidRequestError as error:
        code, message, param = error.code or "invalid_request", provider_message(error), error.param
        return settlement.settle_failure(
            payment, code, "", message, token_id=token_id, claim=claim,
            answer=lambda row: refused("payment", row.pk, code, message, param),
        )[1]  # fmt: skip
    except (stripe.AuthenticationError, stripe.PermissionError) as error:
        logger.error("Stripe refused our credentials for payment %s: %s", payment.pk, error)
        answer = unavailable("payments_misconfigured", "Payments are unavailable right now.")
    except (
        stripe.RateLimitError,
        stripe.APIConnectionError,
        stripe.APIError,
        stripe.IdempotencyError,
    ) as error:
        logger.warning("Stripe unavailable for payment %s: %s", payment.pk, type(error).__name__)
        answer = unavailable(
            "payment_provider_unavailable",
            "The payment provider is not answering. Nothing was confirmed; retry with the "
            "same Idempotency-Key and you will not be charged twice.",
        )
    # Not final (a retry asks Stripe again): release the claim, keep the token's id.
    settlement.settle(payment, lambda row: None, token_id=token_id, claim=claim)
    return answer


def paid_answer(row, intent=None):
    """201 with the payment as settled, or 202 when the customer must authenticate."""
    body = PaymentSerializer(row).data
    if row.status == Payment.Status.REQUIRES_ACTION and intent is not None:
        next_action = field(intent, "next_action")
        body = {
            **body,
            "client_secret": intent.client_secret,
            # redirect_to_url (given a return_url) or use_stripe_sdk: what the app does next
            "next_action": next_action.to_dict() if next_action else None,
        }
        return 202, body, {}, True
    return 201, body, {}, True


def declined(payment, error, context):
    details = getattr(error, "error", None) or {}
    code = error.code if isinstance(error.code, str) else "card_declined"
    decline_code = field(details, "decline_code", "")
    message = provider_message(error)[:500]

    def answer(row):
        body = envelope("card_error", code, message, getattr(error, "param", None))
        body["error"]["decline_code"] = decline_code or None
        body["error"]["payment"] = row.pk
        return 400, body, {}, True

    return settlement.settle_failure(
        payment, code, decline_code, message, answer=answer, **context
    )[1]


def needs_customer_back(error):
    details = getattr(error, "error", None) or {}
    return "authentication_required" in (error.code, field(details, "decline_code"))


def authentication_required(payment, error, context):
    """An off-session payment the bank wants authenticated: the app brings the customer
    back and confirms the same PaymentIntent on-session with its client secret
    (docs.stripe.com/payments/save-and-reuse: "authentication_required")."""
    details = getattr(error, "error", None) or {}
    intent = field(details, "payment_intent", {})
    message = (
        "Your bank needs you to confirm this payment in the app: confirm the PaymentIntent "
        "with `client_secret` (the mobile SDK's confirmPayment / handleNextAction)."
    )

    def answer(row):
        body = envelope("card_error", "authentication_required", message, None)
        body["error"].update(
            decline_code="authentication_required",
            payment=row.pk,
            payment_intent=row.stripe_payment_intent_id or None,
            client_secret=field(intent, "client_secret"),
        )
        return 400, body, {}, True

    return settlement.settle_authentication_required(
        payment, intent, message, answer=answer, **context
    )[1]


# ------------------------------------------------------------------ saved cards, holds
def intent_options(payment, data):
    """Extra PaymentIntent parameters for POST /api/payments/: the saved card's Customer,
    off_session, and manual capture."""
    options = {}
    if data.get("customer"):
        options["customer"] = data["customer"]
    if data.get("off_session"):
        options["off_session"] = True
    if not payment.capture:
        options["capture_method"] = "manual"
    return options


MAGIC_PREFIX = "pm_card_"  # Stripe's test PaymentMethods: new, unattached each time


def resolve_payment_method(user, data):
    """Before a payment row is written: a saved PaymentMethod must be the user's own (its
    Customer is added to the request); off_session needs a saved one."""
    method_id = data.get("payment_method")
    if not method_id:
        if data.get("off_session"):
            raise ApiError(
                "off_session needs payment_method: one of your saved cards.",
                code="payment_method_required",
                param="payment_method",
            )
        return data
    customer_id = customers.customer_for(user, create=False)
    if method_id.startswith(MAGIC_PREFIX) and not data.get("off_session"):
        return data
    owner = None
    if not method_id.startswith(MAGIC_PREFIX):
        try:
            owner = field(stripe.PaymentMethod.retrieve(method_id), "customer")
        except stripe.InvalidRequestError as error:
            raise ApiError(
                "No such saved card.", code="payment_method_not_found", param="payment_method"
            ) from error
        except stripe.StripeError as error:
            raise provider_unavailable(error, f"payment method of user {user.pk}") from error
    if owner and owner != customer_id:
        raise ApiError(
            "No such saved card.", code="payment_method_not_found", param="payment_method"
        )
    if data.get("off_session") and not owner:
        raise ApiError(
            "off_session payments need one of your saved cards (GET /api/payment-methods/).",
            code="payment_method_not_saved",
            param="payment_method",
        )
    return {**data, "customer": owner} if owner else data


# ------------------------------------------------------------------ PaymentSheet
def create_sheet(user, data, idempotency_key=""):
    """Write the pending Payment, create its PaymentIntent for the user's Customer and an
    EphemeralKey; answer what PaymentSheet's setup needs. A retry with the same
    Idempotency-Key reaches the same row, hence the same PaymentIntent (Stripe replays it).
    The payment settles from Stripe's webhooks (and `reconcile_payments`), never from the
    app's word."""
    sheet = {
        "sheet": True,
        "amount": data["amount"],
        "currency": data["currency"],
        "description": data.get("description", ""),
        "save_card": data.get("save_card", False),
        "capture": data.get("capture", True),
    }
    customer_id = customers.customer_for(user)
    payment, replay = claim_payment(user, sheet, idempotency_key)
    if replay:  # a sheet's answer is never stored (it holds secrets): this is unreachable
        return replay[1]
    claim, key = payment.locked_until, payment.stripe_idempotency_key
    options = {}
    if sheet["save_card"]:
        options["setup_future_usage"] = "off_session"
    if not sheet["capture"]:
        options["capture_method"] = "manual"
    try:
        intent = stripe.PaymentIntent.create(
            amount=payment.amount,
            currency=payment.currency,
            customer=customer_id,
            description=payment.description or None,
            metadata={"payment_id": str(payment.pk), "user_id": str(user.pk)},
            allowed_payment_method_types=["card"],
            idempotency_key=key,
            **options,
        )
        ek = customers.ephemeral_key(
            customer_id, data.get("stripe_version"), customers.ephemeral_key_id(key)
        )
    except stripe.StripeError as error:
        if isinstance(error, stripe.InvalidRequestError | stripe.CardError):
            # Stripe refused the request itself: the payment ends here, not left pending
            customers.forget_missing_customer(user, customer_id, error)  # a retry makes one
            message = provider_message(error)
            settlement.settle_failure(
                payment, error.code or "invalid_request", "", message, claim=claim
            )
            raise ApiError(message, code=error.code or "invalid_request") from error
        idempotency.release_claim(payment, claim)
        raise provider_unavailable(error, f"sheet payment {payment.pk}") from error
    # The intent is open (requires_payment_method): record its id, release the claim.
    payment, _ = settlement.settle(
        payment,
        lambda row: settlement.set_ids(row, False, intent_id=intent.id),
        claim=claim,
    )
    return {
        "payment": PaymentSerializer(payment).data,
        "payment_intent_client_secret": intent.client_secret,
        "customer": customer_id,
        "ephemeral_key_secret": ek.secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
    }
