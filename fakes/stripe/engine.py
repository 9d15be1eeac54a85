"""FakeStripe: an in-memory, stateful engine that answers like Stripe's test mode.

It speaks Stripe's wire format (form-encoded requests, JSON answers, Stripe's error
bodies and status codes) through `handle()`, so the real stripe library can talk to it
through any transport. Layout (after moto's models/responses/urls split):

- `wire.py`      form decoding, Stripe's error body, small coercions;
- `routes.py`    the route table derived from stripe-python's service classes;
- `params.py`    declaration-driven validation of every request (stripe.params TypedDicts);
- `pipeline.py`  one request: route, authenticate, fault, validate, replay or run;
- `store.py`     objects by id, ids, list indexes ordered by `created`;
- `events.py`    events, snapshots, webhook signatures;
- `generic.py`   endpoints with no model: a declared object, stored, marked generic;
- `resources/`   tokens and cards, charges and refunds, payment methods, payment intents,
                 customers: handlers that get the store and never parse HTTP;
- `coverage.py`  each derived endpoint: stateful, generic or refused.
"""

import copy
import threading
import time

from fakes.contract import FaultPlan
from fakes.stripe.client_side import ClientSide
from fakes.stripe.connect import Connect
from fakes.stripe.events import Events, sign_webhook
from fakes.stripe.generic import Generic
from fakes.stripe.pipeline import Pipeline
from fakes.stripe.resources.balance import Balance
from fakes.stripe.resources.charges import Charges
from fakes.stripe.resources.customers import CustomerAccounts, Customers, CustomerSources
from fakes.stripe.resources.ephemeral_keys import EphemeralKeys
from fakes.stripe.resources.payment_intents import PaymentIntents
from fakes.stripe.resources.payment_methods import PaymentMethods, SavedPaymentMethods
from fakes.stripe.resources.quotes import Quotes
from fakes.stripe.resources.setup_intents import SetupIntents
from fakes.stripe.resources.subscriptions import Subscriptions
from fakes.stripe.resources.tokens import Tokens
from fakes.stripe.store import Store
from fakes.stripe.wire import API_VERSION, StripeError, decode_form, invalid

__all__ = ["API_VERSION", "FakeStripe", "StripeError", "decode_form", "invalid", "sign_webhook"]


def retrieve(object_name):
    return lambda self, params, id: self.lookup(id, object_name)


def listing(object_name, *filters):
    return lambda self, params, *ids: self.page(object_name, params, self._path, filters)


# (method, template as stripe-python declares it) -> handler(self, params, *ids)
STATEFUL = {
    ("POST", "/v1/tokens"): Tokens.create_token,
    ("GET", "/v1/tokens/{token}"): retrieve("token"),
    ("POST", "/v1/charges"): Charges.create_charge,
    ("GET", "/v1/charges"): listing("charge", "customer", "payment_intent"),
    ("GET", "/v1/charges/{charge}"): retrieve("charge"),
    ("POST", "/v1/charges/{charge}/capture"): Charges.capture_charge,
    # the legacy routes a charge's `refunds` list object reaches (stripe.Charge's own)
    ("GET", "/v1/charges/{charge}/refunds"): Charges.list_charge_refunds,
    ("GET", "/v1/charges/{charge}/refunds/{refund}"): Charges.retrieve_charge_refund,
    ("POST", "/v1/refunds"): Charges.create_refund,
    ("GET", "/v1/refunds/{refund}"): retrieve("refund"),
    ("GET", "/v1/refunds"): listing("refund", "charge", "payment_intent"),
    ("POST", "/v1/refunds/{refund}/cancel"): Charges.cancel_refund,
    ("POST", "/v1/payment_methods"): PaymentMethods.create_payment_method,
    ("GET", "/v1/payment_methods/{payment_method}"): PaymentMethods.retrieve_payment_method,
    ("POST", "/v1/payment_intents"): PaymentIntents.create_payment_intent,
    ("GET", "/v1/payment_intents"): listing("payment_intent", "customer"),
    ("GET", "/v1/payment_intents/{intent}"): retrieve("payment_intent"),
    ("POST", "/v1/payment_intents/{intent}/confirm"): PaymentIntents.confirm_payment_intent,
    ("POST", "/v1/payment_intents/{intent}/cancel"): PaymentIntents.cancel_payment_intent,
    ("POST", "/v1/payment_intents/{intent}/capture"): PaymentIntents.capture_payment_intent,
    ("POST", "/v1/customers"): Customers.create_customer,
    ("GET", "/v1/customers/{customer}"): CustomerAccounts.retrieve_customer,
    # mobile checkout: customers, saved cards, ephemeral keys, setup intents
    ("GET", "/v1/customers"): listing("customer", "email"),
    ("POST", "/v1/customers/{customer}"): CustomerAccounts.update_customer,
    ("DELETE", "/v1/customers/{customer}"): CustomerAccounts.delete_customer,
    ("GET", "/v1/customers/{customer}/payment_methods"): (
        CustomerAccounts.list_customer_payment_methods
    ),
    ("GET", "/v1/customers/{customer}/payment_methods/{payment_method}"): (
        CustomerAccounts.retrieve_customer_payment_method
    ),
    ("GET", "/v1/payment_methods"): SavedPaymentMethods.list_payment_methods,
    # the legacy cards API (customer sources)
    ("POST", "/v1/customers/{customer}/sources"): CustomerSources.create_customer_source,
    ("GET", "/v1/customers/{customer}/sources"): CustomerSources.list_customer_sources,
    ("GET", "/v1/customers/{customer}/sources/{id}"): CustomerSources.retrieve_customer_source,
    ("POST", "/v1/customers/{customer}/sources/{id}"): CustomerSources.update_customer_source,
    ("DELETE", "/v1/customers/{customer}/sources/{id}"): CustomerSources.delete_customer_source,
    ("POST", "/v1/payment_methods/{payment_method}/attach"): (
        SavedPaymentMethods.attach_payment_method
    ),
    ("POST", "/v1/payment_methods/{payment_method}/detach"): (
        SavedPaymentMethods.detach_payment_method
    ),
    ("POST", "/v1/ephemeral_keys"): EphemeralKeys.create_ephemeral_key,
    ("DELETE", "/v1/ephemeral_keys/{key}"): EphemeralKeys.delete_ephemeral_key,
    ("POST", "/v1/setup_intents"): SetupIntents.create_setup_intent,
    ("GET", "/v1/setup_intents"): listing("setup_intent", "customer", "payment_method"),
    ("GET", "/v1/setup_intents/{intent}"): retrieve("setup_intent"),
    ("POST", "/v1/setup_intents/{intent}/confirm"): SetupIntents.confirm_setup_intent,
    ("POST", "/v1/setup_intents/{intent}/cancel"): SetupIntents.cancel_setup_intent,
    ("POST", "/v1/subscriptions"): Subscriptions.create_subscription,
    ("POST", "/v1/subscriptions/{subscription_exposed_id}"): Subscriptions.update_subscription,
    ("DELETE", "/v1/subscriptions/{subscription_exposed_id}"): Subscriptions.cancel_subscription,
    ("GET", "/v1/balance"): Balance.retrieve_balance,
    ("GET", "/v1/balance_transactions"): Balance.list_balance_transactions,
    ("GET", "/v1/balance_transactions/{id}"): Balance.retrieve_balance_transaction,
    ("GET", "/v1/quotes/{quote}/pdf"): Quotes.quote_pdf,  # bytes: application/pdf
    ("GET", "/v1/events"): listing("event", "type"),
    ("GET", "/v1/events/{id}"): retrieve("event"),
}


# The resources with behaviour; everything else is answered generically (generic.py).
MODELLED = frozenset(
    {"token", "card", "charge", "refund", "payment_method", "payment_intent", "customer", "event",
     "setup_intent", "ephemeral_key", "balance_transaction", "balance", "subscription"}
)  # fmt: skip


class FakeStripe(
    Pipeline,
    ClientSide,
    Connect,
    Store,
    Events,
    Generic,
    Tokens,
    Charges,
    Balance,
    PaymentMethods,
    SavedPaymentMethods,
    PaymentIntents,
    SetupIntents,
    Customers,
    CustomerAccounts,
    CustomerSources,
    EphemeralKeys,
    Subscriptions,
    Quotes,
):
    """The engine. Thread-safe: every request runs under one lock, as one transaction."""

    # what dump_state keeps: everything but the lock and the fault plan
    STATE = ("objects", "_indexes", "_counter", "_snapshots", "delivered", "_requests",
             "_idempotent", "_card_of", "_parents", "_refunds_due",
             "_set_up", "_ephemeral_versions", "_balance_sources", "_fixtures",
             "_account_of")  # fmt: skip

    # what "now" is for the objects it makes and the holds it expires: the machine's time,
    # or the sandbox service's clock (moved forward by `sandbox clock advance`)
    clock = staticmethod(time.time)

    def now(self):
        return int(self.clock())

    def __init__(self, *, compact_json=False, stripe_mock=False):
        """compact_json: answer `{"a":1}` rather than api.stripe.com's indented JSON (faster);
        stripe_mock: the stripe-mock-compatible mode (generic.py: an id never issued answers
        a complete object of its resource, an empty first page one object), for suites
        written against stripe-mock. The default is stateful and strict."""
        self._lock = threading.RLock()
        self.faults = FaultPlan()
        self.compact_json = compact_json
        self.stripe_mock = stripe_mock
        self.reset()

    def reset(self):
        with self._lock:
            self._reset_store()
            self._reset_events()
            self._reset_pipeline()
            self._reset_generic()
            self._reset_balance()
            self._reset_connect()
            self._card_of = {}  # card/pm id -> cards.card_key (never a full number)
            self._refunds_due = []  # [refund id, final status] for settle_refunds()
            self._set_up = set()  # payment methods authenticated for off-session use
            self._ephemeral_versions = {}  # ephemeral key id -> the Stripe-Version it pins
            self.faults.clear()

    def get(self, object_id):
        found = self.objects[object_id]
        return self._materialize(found) if found["object"] == "event" else found

    @property
    def charges(self):
        return self.all("charge")

    def _handler_for(self, endpoint):
        """(handler(endpoint, params, ids), generic?) for a routed endpoint."""
        stateful = STATEFUL.get((endpoint.method, endpoint.template))
        if stateful is not None:

            def run(endpoint, params, ids):
                self._path = endpoint.template
                if not self.stripe_mock:
                    return stateful(self, params, *ids)
                # stripe-mock-compatible mode: an action on a fixture (an object the fake
                # never issued) answers as stripe-mock does, the fixture with the request's
                # parameters echoed, when the modelled behaviour cannot run on it
                try:
                    return stateful(self, params, *ids)
                except StripeError:
                    on_fixture = bool(ids) and ids[-1] in self._fixtures
                    if not on_fixture or endpoint.resource_class() is None:
                        raise
                    return self.generic(endpoint, params, ids)
                except (KeyError, TypeError):  # a fixture lacks what a modelled object has
                    if not self._fixtures or endpoint.resource_class() is None:
                        raise
                    return self.generic(endpoint, params, ids)

            return run, False
        if endpoint.kind == "search":
            modelled = endpoint.resource_class().OBJECT_NAME in MODELLED
            return (
                lambda endpoint, params, ids: self.search(endpoint, params, endpoint.template)
            ), not modelled
        return self.generic, True

    # ------------------------------------------------------------ persistence
    def dump_state(self):
        """The engine's whole state as plain, picklable data (not the lock or fault plan)."""
        with self._lock:
            return copy.deepcopy({name: getattr(self, name) for name in self.STATE})

    def load_state(self, state):
        """Replace the state with one from dump_state (e.g. in another process)."""
        with self._lock:
            for name in self.STATE:
                if name in state:  # (a dump made before an attribute existed: it keeps its value)
                    setattr(self, name, copy.deepcopy(state[name]))
