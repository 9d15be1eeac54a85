"""The fake Stripe for this backend's tests and sandbox mode.

The fake itself lives in fakes.stripe (the engine, fake_stripe(), MockToken, the
in-process HTTP client, the test cards, webhook signing); its public names are
re-exported here, where this project's tests and docs have always imported them:

    from payments.testing import fake_stripe, MockToken

What checks OUR backend stays here: the ledger invariant (ledger.py) and the scenario
driver (scenarios.py), which also drive the sandbox service over HTTP (service.py).
"""

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
    "is_installed",
    "set_default_engine",
    "shared_engine",
    "sign_webhook",
    "signed_webhook",
    "stripe_globals",
    "stripe_server",
]

# The ledger invariant and the scenario driver (they use the models: import after Django setup).
from payments.testing.ledger import LedgerAssertionsMixin, assert_ledger_matches
from payments.testing.scenarios import MoneyOperation, ScenarioDriver
