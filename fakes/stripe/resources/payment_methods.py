"""PaymentMethods of type card, including Stripe's magic pm_card_* ids."""

import bisect

from fakes.stripe import cards
from fakes.stripe.params import apply_metadata
from fakes.stripe.resources.charges import card_error
from fakes.stripe.resources.tokens import magic_expiry
from fakes.stripe.store import position_of, sequence
from fakes.stripe.wire import empty_billing_details, invalid


class PaymentMethods:
    def create_payment_method(self, params):
        if params.get("type") != "card":
            raise invalid("Missing required param: type.", "parameter_missing", "type")
        card = params.get("card") or {}
        if isinstance(card, dict) and set(card) == {"token"}:
            source = self._card_from_source(card["token"], "card[token]")
            test_card, month, year = (
                self.test_card(source["id"]),
                source["exp_month"],
                source["exp_year"],
            )
            print_ = source["fingerprint"]
        else:
            test_card, month, year, _, print_ = self._validate_card(card)
        return self._store_payment_method(test_card, month, year, params.get("metadata"), print_)

    def _store_payment_method(self, test_card, month, year, metadata=None, fingerprint=None):
        method = {
            "id": self.new_id("pm"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": empty_billing_details(),
            "card": self._pm_card_details(test_card, month, year, fingerprint),
            "created": self.now(),
            "customer": None,
            "livemode": False,
            "metadata": apply_metadata({}, metadata),
            "type": "card",
        }
        self._card_of[method["id"]] = cards.card_key(test_card)
        return self.store(method)

    def _payment_method(self, method_id, param="payment_method"):
        if method_id in cards.PAYMENT_METHODS:
            test_card = cards.CARDS[cards.PAYMENT_METHODS[method_id]]
            return self._store_payment_method(test_card, *magic_expiry())
        return self.lookup(method_id, "payment_method", param)

    def retrieve_payment_method(self, params, id):
        if id in cards.PAYMENT_METHODS:
            return self._payment_method(id, "id")
        return self.lookup(id, "payment_method")


class SavedPaymentMethods:
    """Attach, detach and list a customer's PaymentMethods (docs.stripe.com/api/payment_methods).

    Attaching checks the card with the issuer as saving a card does: a declining test card
    is refused with its decline (docs.stripe.com/testing: 4000000000000002 "Always fails
    with a decline code of generic_decline"), except 4000000000000341, whose attachment
    "succeeds, but attempts to charge the customer fail". A card that needs 3-D Secure
    attaches without it (no authentication at attach: Stripe recommends a SetupIntent for
    that, which is why a card attached this way is not "set up" for off-session use).
    """

    def attach_payment_method(self, params, id):
        method = self._payment_method(id, "payment_method")
        customer = self.lookup(params.get("customer"), "customer", "customer")
        if method["customer"] and method["customer"] != customer["id"]:
            raise invalid(
                "The payment method you provided has already been attached to a customer.",
                "payment_method_unexpected_state",
            )
        self._check_attachable(method)
        self._attach(method, customer["id"])
        return method

    def _check_attachable(self, method):
        test_card = self.test_card(method["id"])
        if test_card.decline is not None and test_card.attach_declines:
            raise card_error(test_card.decline)

    def _attach(self, method, customer_id):
        if method["customer"] == customer_id:
            return method
        method["customer"] = customer_id
        self._index_put(("payment_method", "customer", customer_id), method["id"])
        self._emit("payment_method.attached", method)
        return method

    def detach_payment_method(self, params, id):
        method = self.lookup(id, "payment_method")
        if not method["customer"]:
            raise invalid(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible.",
                "payment_method_unexpected_state",
            )
        return self._detach(method)

    def _detach(self, method):
        customer_id = method["customer"]
        method["customer"] = None
        self._index_remove(("payment_method", "customer", customer_id), method["id"])
        self._set_up.discard(method["id"])
        customer = self.objects.get(customer_id)
        if (
            customer
            and not customer.get("deleted")
            and customer["invoice_settings"]["default_payment_method"] == method["id"]
        ):
            customer["invoice_settings"]["default_payment_method"] = None
        self._emit("payment_method.detached", method, {"customer": customer_id})
        return method

    def _index_put(self, key, object_id):
        """Add an id to an index in its place (indexes stay sorted by the id's counter, so a
        card re-attached later is listed where its creation puts it)."""
        index = self._indexes.setdefault(key, [])
        if position_of(index, object_id) is None:
            bisect.insort(index, object_id, key=sequence)

    def _index_remove(self, key, object_id):
        """Drop one id from an index (a detached card leaves its customer's list)."""
        index = self._indexes.get(key)
        position = position_of(index, object_id) if index else None
        if position is not None:
            del index[position]

    def list_payment_methods(self, params):
        return self.page("payment_method", params, "/v1/payment_methods", ("customer", "type"))
