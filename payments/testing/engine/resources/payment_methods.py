"""PaymentMethods of type card, including Stripe's magic pm_card_* ids."""

import time

from payments.testing import cards
from payments.testing.engine.params import apply_metadata
from payments.testing.engine.wire import empty_billing_details, invalid


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
            "created": int(time.time()),
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
            return self._store_payment_method(test_card, 12, time.gmtime().tm_year + 5)
        return self.lookup(method_id, "payment_method", param)

    def retrieve_payment_method(self, params, id):
        if id in cards.PAYMENT_METHODS:
            return self._payment_method(id, "id")
        return self.lookup(id, "payment_method")
