"""The user's Stripe Customer and saved cards, as Stripe's mobile SDKs use them.

A Customer per user (created once, lazily), EphemeralKeys pinned to the SDK's API version,
and saved cards: a SetupIntent to save one, the Customer's PaymentMethods, detach. Every
state-changing Stripe call carries an idempotency key derived from a row written before
the call (StripeCustomer, CardSetup).
"""

import logging
import re
import time
import uuid
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conventions.errors import ApiError
from payments.answers import provider_unavailable, stripe_refused
from payments.models import CardSetup, StripeCustomer
from payments.stripe_objects import field

logger = logging.getLogger(__name__)


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
        raise provider_unavailable(error, f"the customer of user {user.pk}") from error
    StripeCustomer.objects.filter(pk=profile.pk, stripe_customer_id="").update(
        stripe_customer_id=customer.id
    )
    return StripeCustomer.objects.get(pk=profile.pk).stripe_customer_id


def forget_missing_customer(user, customer_id, error):
    """True if Stripe no longer knows the user's stored Customer (deleted in the Dashboard,
    or a sandbox reset); then it is forgotten, with a fresh reference (a create replayed
    with the old key would answer the deleted Customer), so the next call makes another."""
    if not customer_id or getattr(error, "code", None) != "resource_missing":
        return False
    if customer_id not in str(getattr(error, "user_message", None) or error):
        return False  # another object is missing (a PaymentMethod, say), not the Customer
    forgotten = StripeCustomer.objects.filter(user=user, stripe_customer_id=customer_id).update(
        stripe_customer_id="", reference=uuid.uuid4(), created_at=timezone.now()
    )
    if forgotten:
        logger.warning("Stripe has no customer %s (user %s): forgotten", customer_id, user.pk)
    return True


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
    except stripe.InvalidRequestError as error:
        if forget_missing_customer(user, customer_id, error):
            raise stripe_refused(error) from error  # (a retry makes a new Customer)
        raise provider_unavailable(error, f"card setup {setup.pk}") from error
    except stripe.StripeError as error:
        raise provider_unavailable(error, f"card setup {setup.pk}") from error
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
        if forget_missing_customer(user, customer_id, error):
            return []  # its cards went with it
        raise provider_unavailable(error, f"saved cards of user {user.pk}") from error
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
        raise provider_unavailable(error, f"detaching a card of user {user.pk}") from error
