"""The fake Stripe: an engine that answers like Stripe's test mode, and the ways to reach it.

    from fakes.stripe import fake_stripe

    with fake_stripe() as engine:       # stripe-python now talks to `engine`, no socket
        stripe.PaymentIntent.create(amount=500, currency="usd", payment_method="pm_card_visa",
                                    confirm=True)
        assert engine.all("payment_intent")[0]["status"] == "succeeded"

- fakes.stripe.engine     FakeStripe (`handle()`; wire.py, routes.py, params.py, pipeline.py,
                          store.py, events.py, generic.py, resources/: one module per family);
- fakes.stripe.client     fake_stripe(), FakeStripeMixin, the in-process HTTP client,
                          MockToken & co (the client-library layer), stripe_server(),
                          signed_webhook(), deliver_events();
- fakes.stripe.cards      Stripe's published test cards, tokens and payment methods;
- fakes.stripe.forwarding WebhookForwarder: every event POSTed, signed, like `stripe listen`;
- fakes.stripe.coverage   each endpoint stripe-python knows: stateful, generic or refused
                          (`python -m fakes.stripe.coverage`).
"""

from fakes.stripe import cards
from fakes.stripe.client import (
    TEST_API_KEY,
    DefaultFakeStripeClient,
    EngineResource,
    FakeStripeHTTPClient,
    FakeStripeMixin,
    MockCharge,
    MockCustomer,
    MockEphemeralKey,
    MockPaymentIntent,
    MockPaymentMethod,
    MockRefund,
    MockSetupIntent,
    MockToken,
    current_engine,
    deliver_events,
    encode_form,
    error_for,
    fake_stripe,
    is_installed,
    set_default_engine,
    shared_engine,
    signed_webhook,
    stripe_globals,
    stripe_server,
)
from fakes.stripe.engine import API_VERSION, FakeStripe, StripeError, decode_form, sign_webhook
from fakes.stripe.forwarding import RETRY_DELAYS, WebhookForwarder, http_target

__all__ = [
    "API_VERSION",
    "RETRY_DELAYS",
    "TEST_API_KEY",
    "DefaultFakeStripeClient",
    "EngineResource",
    "FakeStripe",
    "FakeStripeHTTPClient",
    "FakeStripeMixin",
    "MockCharge",
    "MockCustomer",
    "MockEphemeralKey",
    "MockPaymentIntent",
    "MockPaymentMethod",
    "MockRefund",
    "MockSetupIntent",
    "MockToken",
    "StripeError",
    "WebhookForwarder",
    "cards",
    "current_engine",
    "decode_form",
    "deliver_events",
    "encode_form",
    "error_for",
    "fake_stripe",
    "http_target",
    "is_installed",
    "set_default_engine",
    "shared_engine",
    "sign_webhook",
    "signed_webhook",
    "stripe_globals",
    "stripe_server",
]
