"""PaymentIntents: create, confirm (3-D Secure via requires_action), cancel."""

import json

import stripe

from fakes.stripe import cards
from fakes.stripe.generic import shaped
from fakes.stripe.params import apply_metadata
from fakes.stripe.resources.charges import card_error
from fakes.stripe.resources.setup_intents import SETUP_EXEMPT
from fakes.stripe.wire import StripeError, as_bool, client_secret_tail, invalid

Decline3DS = cards.Decline(
    "payment_intent_authentication_failure",
    "authentication_not_handled",
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
)


SUPPORTED_TYPES = ("card",)

# Parameters of POST /v1/payment_intents that Stripe's reference says "can only be used with
# confirm=true" (docs.stripe.com/api/payment_intents/create: off_session, return_url,
# error_on_requires_action, mandate, mandate_data).
CONFIRM_ONLY = ("off_session", "return_url", "error_on_requires_action", "mandate", "mandate_data")


def check_intent_parameters(params, confirming):
    """The rules between parameters Stripe documents for creating/confirming an intent."""
    if not confirming:
        for name in CONFIRM_ONLY:
            if params.get(name) not in (None, "", False, "false"):
                raise invalid(
                    f"The parameter {name} can only be used with confirm=true "
                    f"(docs.stripe.com/api/payment_intents/create#create_payment_intent-{name}).",
                    None,
                    name,
                )
    off_session = params.get("off_session", False) not in (False, "false")
    # setup_future_usage=on_session saves a card "when your customer is present in your
    # checkout flow" (docs.stripe.com/api/payment_intents/create#create_payment_intent-setup_future_usage):
    # it contradicts off_session=true.
    if off_session and params.get("setup_future_usage") == "on_session":
        raise invalid(
            "You cannot set setup_future_usage to on_session on an off_session payment: use "
            "off_session (docs.stripe.com/payments/save-during-payment).",
            None,
            "setup_future_usage",
        )


class PaymentIntents:
    def create_payment_intent(self, params):
        check_intent_parameters(params, as_bool(params, "confirm", False))
        amount, currency = self._amount_and_currency(params)
        method = (
            self._payment_method(params["payment_method"]) if params.get("payment_method") else None
        )
        if params.get("customer"):
            self.lookup(params["customer"], "customer", "customer")
        allowed = params.get("allowed_payment_method_types")
        intent_id = self.new_id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": params.get("capture_method", "automatic_async"),
            "client_secret": f"{intent_id}_secret_{client_secret_tail()}",
            "confirmation_method": "automatic",
            "created": self.now(),
            "currency": currency,
            "customer": params.get("customer"),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": apply_metadata({}, params.get("metadata")),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": method["id"] if method else None,
            "payment_method_configuration_details": None,
            "payment_method_options": {
                "card": {
                    "installments": None,
                    "mandate_options": None,
                    "network": None,
                    "request_three_d_secure": "automatic",
                }
            },
            "allowed_payment_method_types": allowed,
            # 2026-07-29.dahlia: Stripe reflects the compatible subset of
            # allowed_payment_method_types here; the fake supports cards only.
            "payment_method_types": [t for t in allowed if t in SUPPORTED_TYPES]
            if allowed
            else ["card"],
            "processing": None,
            "receipt_email": params.get("receipt_email"),
            "review": None,
            "setup_future_usage": params.get("setup_future_usage"),
            "shipping": shaped(stripe.PaymentIntent, "shipping", params),
            "source": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "status": "requires_confirmation" if method else "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.store(intent)
        self._emit("payment_intent.created", intent)
        if as_bool(params, "confirm", False):
            return self._confirm(intent, params)
        return intent

    def confirm_payment_intent(self, params, id):
        intent = self.lookup(id, "payment_intent")
        check_intent_parameters(
            {"setup_future_usage": intent["setup_future_usage"], **params}, True
        )
        return self._confirm(intent, params)

    def _confirm(self, intent, params):
        if intent["status"] not in (
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
        ):
            raise invalid(
                f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}.",
                "payment_intent_unexpected_state",
            )
        if params.get("payment_method"):
            intent["payment_method"] = self._payment_method(params["payment_method"])["id"]
        if not intent["payment_method"]:
            raise invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                "payment_intent_unexpected_state",
            )
        self._check_method_customer(intent)
        test_card = self.test_card(intent["payment_method"])
        # off_session is declared `bool | one_off | recurring`; any of the last two means True
        off_session = params.get("off_session", False) not in (False, "false")
        needs_3ds = self.needs_authentication(test_card, intent["payment_method"])
        if off_session and test_card.off_session_exempt:
            needs_3ds = False
        if needs_3ds and test_card.decline is None and not off_session:
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "use_stripe_sdk",
                "use_stripe_sdk": {
                    "type": "three_d_secure_redirect",
                    "stripe_js": "",
                    "source": self.new_id("src"),
                },
            }
            self._emit("payment_intent.requires_action", intent)
            return intent
        decline = test_card.decline or (
            cards.AUTHENTICATION_REQUIRED_OFF_SESSION if needs_3ds else None
        )
        return self._settle_intent(intent, decline)

    def _settle_intent(self, intent, decline):
        method = self.objects[intent["payment_method"]]
        test_card = self.test_card(method["id"])
        card = {
            "id": method["id"],
            "exp_month": method["card"]["exp_month"],
            "exp_year": method["card"]["exp_year"],
            "fingerprint": method["card"]["fingerprint"],
        }
        charge = self._new_charge(
            intent["amount"],
            intent["currency"],
            intent,
            card,
            test_card,
            decline,
            intent["capture_method"] != "manual",
            intent["id"],
            method["id"],
            customer=intent["customer"],
        )
        intent["latest_charge"] = charge["id"]
        intent["next_action"] = None
        if decline:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "charge": charge["id"],
                "code": decline.code,
                "decline_code": decline.decline_code,
                "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
                "message": decline.message,
                "payment_method": method,
                "type": "card_error",
            }
            if decline.param:  # a string when present (Stripe's spec), never null
                intent["last_payment_error"]["param"] = decline.param
            self._emit("charge.failed", charge)
            self._emit("payment_intent.payment_failed", intent)
            # Stripe's error names the intent and the payment method, both as objects
            # (docs.stripe.com/api/errors: payment_intent, payment_method)
            raise card_error(
                decline,
                charge=charge["id"],
                payment_intent=json.loads(json.dumps(intent)),
                payment_method=json.loads(json.dumps(method)),
            )
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"],
                          last_payment_error=None)  # fmt: skip
            self._after_intent_success(intent, test_card)
            self._emit("charge.succeeded", charge)
            self._emit("payment_intent.amount_capturable_updated", intent)
            return intent
        intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        self._after_intent_success(intent, test_card)
        self._emit("charge.succeeded", charge)
        self._emit("payment_intent.succeeded", intent)
        self._maybe_dispute(charge, test_card)
        return intent

    def capture_payment_intent(self, params, id):
        intent = self.lookup(id, "payment_intent")
        if intent["status"] != "requires_capture":
            raise invalid(
                "This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                "may be captured: requires_capture.",
                "payment_intent_unexpected_state",
            )
        amount = params.get("amount_to_capture")
        charge = self.capture_charge(
            {} if amount is None else {"amount": amount}, intent["latest_charge"]
        )
        intent.update(
            status="succeeded", amount_capturable=0, amount_received=charge["amount_captured"]
        )
        self._emit("payment_intent.succeeded", intent)
        return intent

    def complete_authentication(self, intent_id, succeed=True):
        """What the customer does in the app's 3-D Secure sheet: pass or fail the challenge."""
        with self._lock:
            intent = self.lookup(intent_id, "payment_intent")
            if intent["status"] != "requires_action":
                raise ValueError(f"{intent_id} is {intent['status']}, not requires_action")
            test_card = self.test_card(intent["payment_method"])
            decline = test_card.decline_after_authentication if succeed else Decline3DS
            try:
                return self._settle_intent(intent, decline)
            except StripeError:
                return intent

    def cancel_payment_intent(self, params, id):
        intent = self.lookup(id, "payment_intent")
        if intent["status"] in ("succeeded", "canceled"):
            raise invalid(
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be canceled: "
                "requires_payment_method, requires_capture, requires_confirmation, requires_action, "
                "processing.",
                "payment_intent_unexpected_state",
            )
        self._release_hold(intent)
        intent.update(
            status="canceled",
            canceled_at=self.now(),
            next_action=None,
            cancellation_reason=params.get("cancellation_reason"),
        )
        self._emit("payment_intent.canceled", intent)
        return intent

    # ------------------------------------------------------- saved cards, holds (mobile)
    def _check_method_customer(self, intent):
        """A PaymentMethod attached to a customer is used only with that customer
        (docs.stripe.com/payments/save-and-reuse: pass the customer and the method)."""
        method = self.objects[intent["payment_method"]]
        if method["customer"] and method["customer"] != intent["customer"]:
            raise invalid(
                f"The provided PaymentMethod {method['id']} belongs to a Customer; pass that "
                "Customer's id as `customer` to use it.",
                "payment_method_customer_mismatch" if intent["customer"] else "parameter_missing",
                "customer",
            )

    def _after_intent_success(self, intent, test_card):
        """setup_future_usage: "attach the payment method to the Customer after the
        PaymentIntent is confirmed and any required actions from the user are complete"
        (docs.stripe.com/api/payment_intents/create#setup_future_usage); an authenticated
        payment sets the card up for later off-session use."""
        if not intent["setup_future_usage"] or not intent["customer"]:
            return
        method = self.objects[intent["payment_method"]]
        self._attach(method, intent["customer"])
        if test_card.requires_3ds and test_card.number in SETUP_EXEMPT:
            self._set_up.add(method["id"])

    def _release_hold(self, intent):
        """Canceling a requires_capture intent: "the remaining amount_capturable will
        automatically be refunded" (docs.stripe.com/api/payment_intents/cancel): the
        uncaptured charge's authorisation is released (charge.refunded, no money moved)."""
        if intent["status"] != "requires_capture" or not intent["latest_charge"]:
            return
        charge = self.objects[intent["latest_charge"]]
        if not charge["captured"] and not charge["refunded"]:
            self._void(charge, {})
        intent["amount_capturable"] = 0

    def expire_authorizations(self, now=None, hold_seconds=7 * 86400):
        """Harness: what Stripe does to holds nobody captured: "If the authorization expires
        before you capture the funds, the funds are released and the payment status changes
        to canceled" (docs.stripe.com/payments/place-a-hold-on-a-payment-method: 7 days for
        customer-initiated card payments; Visa merchant-initiated ones 4 days 18 hours, pass
        hold_seconds). The docs name no cancellation_reason; the fake uses the enum's
        `automatic`. Returns the intents canceled."""
        now = self.now() if now is None else int(now)
        with self._lock:
            expired = []
            for intent in self.all("payment_intent"):
                if (
                    intent["status"] == "requires_capture"
                    and intent["created"] <= now - hold_seconds
                ):
                    self._release_hold(intent)
                    intent.update(
                        status="canceled", canceled_at=now, cancellation_reason="automatic"
                    )
                    self._emit("payment_intent.canceled", intent)
                    expired.append(intent)
            return expired
