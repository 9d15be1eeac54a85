"""The fake Stripe for this backend's tests and sandbox mode.

The fake itself lives in fakes.stripe (the engine, fake_stripe(), MockToken, the
in-process HTTP client, the test cards, webhook signing); its public names are
re-exported here, where this project's tests and docs have always imported them:

    from payments.testing import fake_stripe, MockToken

What checks or wires OUR backend stays here: the ledger invariant (ledger.py), the
scenario driver (scenarios.py), sandbox mode's SandboxStripe (sandbox.py: the shared
store, the 3-D Secure page) and `install_sandbox()`.
"""

import stripe

from fakes.stripe import (
    TEST_API_KEY,
    DefaultFakeStripeClient,
    FakeStripe,
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
    StripeError,
    cards,
    current_engine,
    deliver_events,
    encode_form,
    fake_stripe,
    is_installed,
    set_default_engine,
    shared_engine,
    sign_webhook,
    signed_webhook,
    stripe_globals,
    stripe_server,
)

__all__ = [
    "TEST_API_KEY",
    "DefaultFakeStripeClient",
    "FakeStripe",
    "FakeStripeHTTPClient",
    "FakeStripeMixin",
    "LedgerAssertionsMixin",
    "MockCharge",
    "MockCustomer",
    "MockEphemeralKey",
    "MockPaymentIntent",
    "MockPaymentMethod",
    "MockRefund",
    "MockSetupIntent",
    "MockToken",
    "MoneyOperation",
    "ScenarioDriver",
    "StripeError",
    "assert_ledger_matches",
    "cards",
    "current_engine",
    "deliver_events",
    "encode_form",
    "fake_stripe",
    "install_sandbox",
    "is_installed",
    "sandbox_stripe",
    "set_default_engine",
    "shared_engine",
    "sign_webhook",
    "signed_webhook",
    "stripe_globals",
    "stripe_server",
]

SANDBOX_API_KEY = "sk_test_sandbox"


def install_sandbox(store=None, forwarder=None, public_url="http://localhost:8000"):
    """Sandbox mode: the process's stripe library talks to the shared engine for good.

    `store` (backend.sandbox_store) shares its state between processes; `forwarder`
    (fakes.stripe.forwarding) delivers its events as webhooks. Returns the
    SandboxStripe wrapper the library talks to.
    """
    from payments.testing.sandbox import SandboxStripe

    wrapper = SandboxStripe(shared_engine, store, forwarder, public_url)
    stripe.default_http_client = FakeStripeHTTPClient(wrapper)
    stripe.api_key = SANDBOX_API_KEY
    stripe.api_base = stripe.DEFAULT_API_BASE
    return wrapper


def sandbox_stripe():
    """The SandboxStripe the stripe library talks to now, or None (not in sandbox mode)."""
    from payments.testing.sandbox import SandboxStripe

    fake = getattr(stripe.default_http_client, "fake", None)
    return fake if isinstance(fake, SandboxStripe) else None


# The ledger invariant and the scenario driver (they use the models: import after Django setup).
from payments.testing.ledger import LedgerAssertionsMixin, assert_ledger_matches  # noqa: E402
from payments.testing.scenarios import MoneyOperation, ScenarioDriver  # noqa: E402
