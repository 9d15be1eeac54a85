"""SetupIntents: save a card for later (off-session) payments, authenticating it once.

docs.stripe.com/api/setup_intents and docs.stripe.com/testing#authentication-and-setup:
- a card that needs 3-D Secure goes to `requires_action` on confirm; once the customer
  authenticates, the intent succeeds and the PaymentMethod is attached to the customer;
- 4000002500003155 "requires authentication for one-time payments. However, if you set up
  this card using the Setup Intents API and use the saved card for subsequent payments, no
  further authentication is needed"; 4000002760003184 "requires authentication on all
  transactions, regardless of how the card is set up";
- a declining card fails setup (402 card_error, `last_setup_error`, `setup_intent.setup_failed`);
  4000000000000341 sets up, then its charges fail.
Events: setup_intent.created, .requires_action, .succeeded, .setup_failed, .canceled.
"""

import json

from fakes.stripe import cards
from fakes.stripe.params import apply_metadata
from fakes.stripe.resources.charges import card_error
from fakes.stripe.wire import StripeError, as_bool, client_secret_tail, invalid

# Cards for which an authenticated setup exempts later payments from 3-D Secure.
SETUP_EXEMPT = {"4000002500003155"}

SETUP_AUTH_FAILED = cards.Decline(
    "setup_intent_authentication_failure",
    "",
    "The latest attempt to set up the payment method has failed because authentication failed.",
)

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


class SetupIntents:
    def create_setup_intent(self, params):
        if params.get("customer"):
            self.lookup(params["customer"], "customer", "customer")
        method = (
            self._payment_method(params["payment_method"]) if params.get("payment_method") else None
        )
        intent_id = self.new_id("seti")
        now = self.now()
        intent = {
            "id": intent_id,
            "object": "setup_intent",
            "application": None,
            "automatic_payment_methods": None,
            "cancellation_reason": None,
            "client_secret": f"{intent_id}_secret_{client_secret_tail()}",
            "created": now,
            "customer": params.get("customer"),
            "description": params.get("description"),
            "flow_directions": None,
            "last_setup_error": None,
            "latest_attempt": None,
            "livemode": False,
            "mandate": None,
            "metadata": apply_metadata({}, params.get("metadata")),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": method["id"] if method else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                }
            },
            "payment_method_types": ["card"],
            "single_use_mandate": None,
            "status": "requires_confirmation" if method else "requires_payment_method",
            "usage": params.get("usage") or "off_session",
        }
        self.store(intent)
        self._emit("setup_intent.created", intent)
        if as_bool(params, "confirm", False):
            return self._confirm_setup(intent, params)
        return intent

    def confirm_setup_intent(self, params, id):
        return self._confirm_setup(self.lookup(id, "setup_intent"), params)

    def _confirm_setup(self, intent, params):
        if intent["status"] not in CONFIRMABLE:
            raise invalid(
                "You cannot confirm this SetupIntent because it has a status of "
                f"{intent['status']}.",
                "setup_intent_unexpected_state",
            )
        if params.get("payment_method"):
            intent["payment_method"] = self._payment_method(params["payment_method"])["id"]
        if not intent["payment_method"]:
            raise invalid(
                "You cannot confirm this SetupIntent because it's missing a payment method.",
                "setup_intent_unexpected_state",
            )
        method = self.objects[intent["payment_method"]]
        if intent["customer"] and method["customer"] not in (None, intent["customer"]):
            raise invalid(
                "The payment method you provided has already been attached to a customer.",
                "payment_method_unexpected_state",
            )
        test_card = self.test_card(method["id"])
        if test_card.decline is not None and test_card.attach_declines:
            self._fail_setup(intent, test_card.decline)
        if test_card.requires_3ds:
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": "",
                                   "source": self.new_id("src")},
            }  # fmt: skip
            self._emit("setup_intent.requires_action", intent)
            return intent
        return self._succeed_setup(intent, authenticated=False)

    def _fail_setup(self, intent, decline):
        method = self.objects[intent["payment_method"]]
        intent.update(status="requires_payment_method", next_action=None)
        intent["last_setup_error"] = {
            "code": decline.code,
            "decline_code": decline.decline_code or None,
            "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
            "message": decline.message,
            "payment_method": method,
            "type": "card_error" if decline.code == "card_declined" else "invalid_request_error",
        }
        self._emit("setup_intent.setup_failed", intent)
        raise card_error(
            decline,
            setup_intent=json.loads(json.dumps(intent)),
            payment_method=json.loads(json.dumps(method)),
        )

    def _succeed_setup(self, intent, authenticated):
        method = self.objects[intent["payment_method"]]
        if intent["customer"]:
            self._attach(method, intent["customer"])
        if authenticated and self.test_card(method["id"]).number in SETUP_EXEMPT:
            self._set_up.add(method["id"])
        intent.update(status="succeeded", next_action=None, last_setup_error=None)
        self._emit("setup_intent.succeeded", intent)
        return intent

    def complete_setup_authentication(self, intent_id, succeed=True):
        """The customer passes (or fails) the 3-D Secure challenge of a SetupIntent."""
        with self._lock:
            intent = self.lookup(intent_id, "setup_intent")
            if intent["status"] != "requires_action":
                raise ValueError(f"{intent_id} is {intent['status']}, not requires_action")
            if succeed:
                return self._succeed_setup(intent, authenticated=True)
            try:
                self._fail_setup(intent, SETUP_AUTH_FAILED)
            except StripeError:
                return intent

    def cancel_setup_intent(self, params, id):
        intent = self.lookup(id, "setup_intent")
        if intent["status"] not in CONFIRMABLE:
            raise invalid(
                "You cannot cancel this SetupIntent because it has a status of "
                f"{intent['status']}. Only a SetupIntent with one of the following statuses may "
                "be canceled: requires_payment_method, requires_confirmation, requires_action.",
                "setup_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            next_action=None,
            cancellation_reason=params.get("cancellation_reason"),
        )
        self._emit("setup_intent.canceled", intent)
        return intent

    def needs_authentication(self, test_card, method_id):
        """Whether a payment on this card needs 3-D Secure now: not for a card set up with
        an authenticated SetupIntent (or on-session payment with setup_future_usage) when
        the card's issuer exempts set-up cards (4000002500003155)."""
        if not test_card.requires_3ds:
            return False
        return not (test_card.number in SETUP_EXEMPT and method_id in self._set_up)
