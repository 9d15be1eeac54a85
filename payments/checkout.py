"""Mobile checkout as Stripe's mobile SDKs do it: a Customer per user, PaymentSheet, saved
cards (SetupIntents), off-session payments with a saved card, and manual capture.

The app never sends card data here: it asks for a PaymentIntent's client secret, the
user's Customer and an EphemeralKey, shows PaymentSheet, and the SDK confirms with Stripe.
The payment settles from Stripe's webhooks (and `reconcile_payments`), never from the
app's word. Every state-changing Stripe call carries an idempotency key derived from a row
written before the call (StripeCustomer, Payment, CardSetup).
"""

import logging
import re
import time
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.api import ApiError, envelope
from payments.models import CardSetup, Payment, StripeCustomer

logger = logging.getLogger(__name__)

# Webhook events apply_event hands to apply_intent beyond succeeded/payment_failed, with the
# payment statuses each may move on from (a late event never moves a payment backwards).
SETTLES = {
    "payment_intent.amount_capturable_updated": (
        Payment.Status.PENDING,
        Payment.Status.REQUIRES_ACTION,
    ),
    "payment_intent.canceled": (
        Payment.Status.PENDING,
        Payment.Status.REQUIRES_ACTION,
        Payment.Status.REQUIRES_CAPTURE,
    ),
}
INTENT_EVENTS = tuple(SETTLES)


def field(obj, name, default=None):
    from payments.services import field as service_field

    return service_field(obj, name, default)


def unavailable(error, what):
    logger.warning("Stripe unavailable for %s: %s", what, type(error).__name__)
    return ApiError(
        "The payment provider is not answering. Retry shortly; nothing will be duplicated.",
        code="payment_provider_unavailable",
        status_code=503,
        headers={"Retry-After": "5"},
    )


# ------------------------------------------------------------------ the Customer
def customer_for(user, create=True):
    """The user's Stripe Customer id, created once (lazily). None if `create` is off and
    the user has none yet.

    The StripeCustomer row is written first (unique per user), and its reference is the
    Customer's idempotency key: concurrent first payments share the row, so Stripe answers
    both with the same Customer. Past Stripe's 24-hour key window the row's Customer is
    looked up by metadata before another is created.
    """
    profile = StripeCustomer.objects.filter(user=user).first()
    if profile is None:
        if not create:
            return None
        try:
            with transaction.atomic():
                profile = StripeCustomer.objects.create(user=user)
        except IntegrityError:  # a concurrent request wrote it first
            profile = StripeCustomer.objects.get(user=user)
    if profile.stripe_customer_id:
        return profile.stripe_customer_id
    if not create:
        return None
    try:
        customer = None
        if profile.created_at < timezone.now() - timedelta(hours=23):
            found = stripe.Customer.search(query=f"metadata['customer_ref']:'{profile.reference}'")
            customer = found.data[0] if found.data else None
        if customer is None:
            customer = stripe.Customer.create(
                email=user.email or None,
                metadata={"user_id": str(user.pk), "customer_ref": str(profile.reference)},
                idempotency_key=profile.stripe_idempotency_key,
            )
    except stripe.StripeError as error:
        raise unavailable(error, f"the customer of user {user.pk}") from error
    StripeCustomer.objects.filter(pk=profile.pk, stripe_customer_id="").update(
        stripe_customer_id=customer.id
    )
    return StripeCustomer.objects.get(pk=profile.pk).stripe_customer_id


def ephemeral_key(customer_id, stripe_version, idempotency_key):
    """An EphemeralKey for the Customer, pinned to the SDK's API version (Stripe requires
    the version explicitly; stripe-python sends it as the Stripe-Version header)."""
    version = stripe_version or settings.STRIPE_MOBILE_API_VERSION or stripe.api_version
    return stripe.EphemeralKey.create(
        customer=customer_id, stripe_version=version, idempotency_key=idempotency_key
    )


def ephemeral_key_id(row_key):
    """A retry within the same half hour gets the same EphemeralKey back (Stripe replays
    it); a later retry gets a fresh one, not a replay of a key that has expired (1 hour)."""
    return f"{row_key}-ephemeral-key-{int(time.time() // 1800)}"


# ------------------------------------------------------------------ PaymentSheet
def create_sheet(user, data, idempotency_key=""):
    """Write the pending Payment, create its PaymentIntent for the user's Customer and an
    EphemeralKey; answer what PaymentSheet's setup needs. A retry with the same
    Idempotency-Key reaches the same row, hence the same PaymentIntent (Stripe replays it)."""
    from payments.serializers import PaymentSerializer
    from payments.services import claim_payment, record_failure, request_fingerprint

    sheet = {
        "sheet": True,
        "amount": data["amount"],
        "currency": data["currency"],
        "description": data.get("description", ""),
        "save_card": data.get("save_card", False),
        "capture": data.get("capture", True),
    }
    customer_id = customer_for(user)
    payment, replay = claim_payment(user, sheet, idempotency_key, request_fingerprint(sheet))
    if replay:  # a sheet's answer is never stored (it holds secrets): this is unreachable
        return replay[1]
    key = payment.stripe_idempotency_key
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
        ek = ephemeral_key(customer_id, data.get("stripe_version"), ephemeral_key_id(key))
    except stripe.StripeError as error:
        Payment.objects.filter(pk=payment.pk).update(locked_until=None)
        if isinstance(error, stripe.InvalidRequestError | stripe.CardError):
            # Stripe refused the request itself: the payment ends here, not left pending
            message = getattr(error, "user_message", None) or str(error)
            record_failure(payment, error.code or "invalid_request", "", message)
            raise ApiError(
                getattr(error, "user_message", None) or str(error),
                code=error.code or "invalid_request",
            ) from error
        raise unavailable(error, f"sheet payment {payment.pk}") from error
    Payment.objects.filter(pk=payment.pk).update(
        stripe_payment_intent_id=intent.id, locked_until=None
    )
    payment.refresh_from_db()
    return {
        "payment": PaymentSerializer(payment).data,
        "payment_intent_client_secret": intent.client_secret,
        "customer": customer_id,
        "ephemeral_key_secret": ek.secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
    }


def failed_status(payment, intent_status="requires_payment_method"):
    """A declined attempt ends a server-confirmed payment; a PaymentSheet payment stays
    pending (the customer may try another card on the same PaymentIntent), and so does an
    off-session payment waiting for the customer to come back and authenticate."""
    if intent_status == "canceled":
        return Payment.Status.FAILED
    if payment.method == Payment.Method.PAYMENT_SHEET:
        return Payment.Status.PENDING
    if payment.status == Payment.Status.REQUIRES_ACTION and (
        payment.decline_code == "authentication_required"
    ):
        return Payment.Status.REQUIRES_ACTION  # off-session: waiting for the customer
    return Payment.Status.FAILED


def record_card(payment, intent):
    """Card brand and last 4 for PaymentIntent payments, from the intent's PaymentMethod
    (like token payments get them from the charge)."""
    method = field(intent, "payment_method")
    if payment.card_last4 or not method or intent.status not in ("succeeded", "requires_capture"):
        return
    try:
        if isinstance(method, str):
            method = stripe.PaymentMethod.retrieve(method)
    except stripe.StripeError as error:
        logger.warning("No card details for payment %s: %s", payment.pk, type(error).__name__)
        return
    card = field(method, "card", {})
    payment.card_brand = field(card, "brand", "")
    payment.card_last4 = field(card, "last4", "")


def apply_captured(payment, intent):
    """Stripe's captured figure; after a partial capture the rest is released, which Stripe
    counts in the charge's amount_refunded (docs.stripe.com/api/charges/capture)."""
    received = field(intent, "amount_received")
    if payment.capture or received is None:
        return
    payment.amount_captured = received
    payment.amount_refunded = max(payment.amount_refunded, payment.amount - received)


# ------------------------------------------------------------------ saved cards
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
    customer_id = customer_for(user, create=False)
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
            raise unavailable(error, f"payment method of user {user.pk}") from error
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


def needs_customer_back(error):
    details = getattr(error, "error", None) or {}
    return "authentication_required" in (error.code, field(details, "decline_code"))


def authentication_required_response(payment, error):
    """An off-session payment the bank wants authenticated: the app brings the customer
    back and confirms the same PaymentIntent on-session with its client secret
    (docs.stripe.com/payments/save-and-reuse: "authentication_required")."""
    details = getattr(error, "error", None) or {}
    intent = field(details, "payment_intent", {})
    message = (
        "Your bank needs you to confirm this payment in the app: confirm the PaymentIntent "
        "with `client_secret` (the mobile SDK's confirmPayment / handleNextAction)."
    )
    payment.status = Payment.Status.REQUIRES_ACTION
    payment.failure_code = "authentication_required"
    payment.decline_code = "authentication_required"
    payment.failure_message = message
    payment.stripe_payment_intent_id = field(intent, "id", "")[:255]
    if isinstance(field(intent, "latest_charge"), str):
        payment.stripe_charge_id = intent["latest_charge"]
    payment.save()
    body = envelope("card_error", "authentication_required", message, None)
    body["error"].update(
        decline_code="authentication_required",
        payment=payment.pk,
        payment_intent=payment.stripe_payment_intent_id or None,
        client_secret=field(intent, "client_secret"),
    )
    return 400, body, {}, True


def setup_card(user, idempotency_key=""):
    """A SetupIntent for the user's Customer (save a card for later off-session use)."""
    customer_id = customer_for(user)
    if idempotency_key:
        try:
            with transaction.atomic():
                setup, _ = CardSetup.objects.get_or_create(
                    user=user, idempotency_key=idempotency_key
                )
        except IntegrityError:  # a concurrent retry wrote it first
            setup = CardSetup.objects.get(user=user, idempotency_key=idempotency_key)
    else:
        setup = CardSetup.objects.create(user=user)
    try:
        intent = stripe.SetupIntent.create(
            customer=customer_id,
            usage="off_session",
            metadata={"user_id": str(user.pk), "card_setup_id": str(setup.pk)},
            idempotency_key=setup.stripe_idempotency_key,
        )
        ek = ephemeral_key(customer_id, None, ephemeral_key_id(setup.stripe_idempotency_key))
    except stripe.StripeError as error:
        raise unavailable(error, f"card setup {setup.pk}") from error
    CardSetup.objects.filter(pk=setup.pk).update(stripe_setup_intent_id=intent.id)
    return {
        "setup_intent": intent.id,
        "setup_intent_client_secret": intent.client_secret,
        "customer": customer_id,
        "ephemeral_key_secret": ek.secret,
        "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
    }


def saved_cards(user):
    customer_id = customer_for(user, create=False)
    if not customer_id:
        return []
    try:
        methods = stripe.Customer.list_payment_methods(customer_id, type="card", limit=100)
    except stripe.StripeError as error:
        raise unavailable(error, f"saved cards of user {user.pk}") from error
    cards = []
    for method in methods.data:
        card = field(method, "card", {})
        cards.append(
            {
                "id": method.id,
                "brand": field(card, "brand", ""),
                "last4": field(card, "last4", ""),
                "exp_month": field(card, "exp_month"),
                "exp_year": field(card, "exp_year"),
            }
        )
    return cards


def detach_card(user, method_id):
    """Detach one of the user's cards. Detaching is idempotent by nature (a second detach is
    refused as "not attached"), so no key: a keyed replay could skip a later re-detach."""
    customer_id = customer_for(user, create=False)
    not_found = ApiError("No such saved card.", code="not_found", status_code=404)
    if not customer_id or not re.fullmatch(r"pm_\w{1,250}", method_id):
        raise not_found
    try:
        method = stripe.PaymentMethod.retrieve(method_id)
        if field(method, "customer") != customer_id:
            raise not_found
        stripe.PaymentMethod.detach(method_id)
    except stripe.InvalidRequestError as error:
        raise not_found from error
    except stripe.StripeError as error:
        raise unavailable(error, f"detaching a card of user {user.pk}") from error


# ------------------------------------------------------------------ manual capture
def _staff_intent_call(payment, call, what):
    try:
        return call()
    except stripe.InvalidRequestError as error:
        raise ApiError(
            getattr(error, "user_message", None) or str(error),
            code=error.code or "invalid_request",
            param=error.param,
        ) from error
    except stripe.StripeError as error:
        raise unavailable(error, f"{what} of payment {payment.pk}") from error


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
    return _settle_staff(payment, intent)


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
    return _settle_staff(payment, intent)


def _settle_staff(payment, intent):
    from payments.services import apply_intent

    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment.pk)
        if intent.status == "canceled" and payment.status == Payment.Status.PENDING:
            payment.status = Payment.Status.FAILED
            payment.failure_code = "canceled"
            payment.save()
        else:
            apply_intent(payment, intent)
    return payment


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
        payment = _settle_staff(payment, intent)
        expired += 1
        report(f"payment {payment.pk}: hold released ({payment.status})")
    return {"expired": expired, "errors": errors}
