"""Tokens and cards: card data validated as Stripe validates it at tokenisation."""

import hashlib
import re
import time

import stripe

from fakes.stripe import cards
from fakes.stripe.generic import shaped
from fakes.stripe.wire import EMPTY, FrozenDict, StripeError, invalid

# Card data Stripe refuses at tokenisation: (message, param), as Stripe words them.
CARD_DATA_ERRORS = {
    "invalid_number": ("Your card number is invalid.", "number"),
    "incorrect_number": ("Your card number is incorrect.", "number"),
    "invalid_expiry_month": ("Your card's expiration month is invalid.", "exp_month"),
    "invalid_expiry_year": ("Your card's expiration year is invalid.", "exp_year"),
    "invalid_cvc": ("Your card's security code is invalid.", "cvc"),
}


def bad_card_data(code):
    message, param = CARD_DATA_ERRORS[code]
    return StripeError(402, "card_error", message, code, param)


CARD_NETWORKS = FrozenDict({"preferred": None})
TOKEN_TYPES = ("bank_account", "pii", "account", "person", "cvc_update")


def card_fingerprint(number):
    return hashlib.sha256(b"fake-stripe:" + number.encode()).hexdigest()[:16]


def magic_expiry():
    """(month, year) a magic token's or payment method's card expires: this month, next
    year, as Stripe's test mode answered stripe-stateful-mock's parity tests (checked against
    live Stripe) for tok_visa's card; the testing docs only ask for "any future date"."""
    now = time.gmtime()
    return now.tm_mon, now.tm_year + 1


class Tokens:
    def test_card(self, object_id):
        """The published behaviour of the card behind a card, token card or payment method."""
        # (a stripe-mock-mode fixture has no card behind it: it behaves as 4242)
        return cards.from_key(self._card_of.get(object_id, "4242424242424242"))

    def _validate_card(self, card):
        if not isinstance(card, dict):
            raise invalid("Invalid object", "parameter_invalid_object", "card")
        for name in ("number", "exp_month", "exp_year"):
            if not card.get(name):
                raise invalid(
                    f"Missing required param: card[{name}].", "parameter_missing", f"card[{name}]"
                )
        number = re.sub(r"[ -]", "", str(card["number"]))
        if not number.isdigit() or not 12 <= len(number) <= 19:
            raise bad_card_data("invalid_number")
        if not cards.luhn_valid(number) or not cards.length_fits(number):
            raise bad_card_data("incorrect_number")
        month, year = str(card["exp_month"]), str(card["exp_year"])
        if not month.isdigit() or not 1 <= int(month) <= 12:
            raise bad_card_data("invalid_expiry_month")
        now = time.gmtime()
        year_value = int(year) if year.isdigit() else -1
        if 0 <= year_value < 100:
            year_value += 2000
        if not now.tm_year <= year_value <= now.tm_year + 50:
            raise bad_card_data("invalid_expiry_year")
        if year_value == now.tm_year and int(month) < now.tm_mon:
            raise bad_card_data("invalid_expiry_month")
        cvc = str(card.get("cvc", ""))
        if cvc and (not cvc.isdigit() or len(cvc) not in (3, 4)):
            raise bad_card_data("invalid_cvc")
        return cards.card_for(number), int(month), year_value, bool(cvc), card_fingerprint(number)

    def _new_card(self, test_card, month, year, cvc_given, fingerprint=None):
        card = {
            "id": self.new_id("card"),
            "object": "card",
            "address_city": None,
            "address_country": None,
            "address_line1": None,
            "address_line1_check": None,
            "address_line2": None,
            "address_state": None,
            "address_zip": None,
            "address_zip_check": None,
            "allow_redisplay": "unspecified",
            "brand": test_card.brand,
            "country": test_card.country,
            "customer": None,
            "cvc_check": "unchecked" if cvc_given else None,
            "dynamic_last4": None,
            "exp_month": month,
            "exp_year": year,
            "fingerprint": fingerprint or card_fingerprint(test_card.number),
            "funding": test_card.funding,
            "last4": test_card.last4,
            "metadata": EMPTY,  # shared; updates replace metadata, never change it in place
            "name": None,
            "networks": CARD_NETWORKS,  # shared: never changed in place
            "regulated_status": "unregulated",
            "tokenization_method": None,
        }
        self._card_of[card["id"]] = cards.card_key(test_card)
        return card

    def _magic_card(self, number):
        # no CVC was given with a magic token (tok_visa): cvc_check is null, as Stripe's
        month, year = magic_expiry()
        return self._new_card(cards.CARDS[number], month, year, False)

    def _pm_card_details(self, test_card, month, year, fingerprint=None):
        return {
            "brand": test_card.network,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": test_card.country,
            "display_brand": test_card.network,
            "exp_month": month,
            "exp_year": year,
            "fingerprint": fingerprint or card_fingerprint(test_card.number),
            "funding": test_card.funding,
            "generated_from": None,
            "last4": test_card.last4,
            "networks": {"available": [test_card.network], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        }

    def create_token(self, params):
        """Card tokens as Stripe validates them; the other token types Stripe creates
        (docs.stripe.com/api/tokens: bank_account, pii, account, person, cvc_update) as
        tokens of that type, their data echoed in the declared shape."""
        for kind in TOKEN_TYPES:
            if kind in params and "card" not in params:
                return self._other_token(kind, params)
        if "card" not in params:
            raise invalid("Missing required param: card.", "parameter_missing", "card")
        test_card, month, year, cvc_given, print_ = self._validate_card(params["card"])
        return self._store_token(self._new_card(test_card, month, year, cvc_given, print_))

    def _other_token(self, kind, params):
        token = {"id": self.new_id("btok" if kind == "bank_account" else ("cvctok" if kind == "cvc_update" else "tok")),
                 "object": "token", "client_ip": None, "created": self.now(),
                 "livemode": False, "type": kind, "used": False}  # fmt: skip
        if kind == "bank_account":
            data = params["bank_account"] if isinstance(params["bank_account"], dict) else {}
            account = shaped(stripe.Token, "bank_account", {"bank_account": data}) or {}
            number = str(data.get("account_number", ""))
            account.update(id=self.new_id("ba"), object="bank_account", last4=number[-4:],
                           status="new", account_holder_name=data.get("account_holder_name"))  # fmt: skip
            account.pop("account_number", None)  # never kept, as card numbers are not
            token["bank_account"] = account
        return self.store(token)

    def _store_token(self, card):
        token = {
            "id": self.new_id("tok"),
            "object": "token",
            "card": card,
            "client_ip": None,
            "created": self.now(),
            "livemode": False,
            "type": "card",
            "used": False,
        }
        return self.store(token)

    def _card_from_source(self, source, param="source"):
        """A source id (token, magic token) becomes the card it carries; tokens are single-use."""
        if source in cards.TOKENS:
            return self._magic_card(cards.TOKENS[source])
        token = self.objects.get(source) if isinstance(source, str) else None
        if token is not None and not self._visible(source):
            token = None  # another account's token (connect.py)
        if token is None and self.stripe_mock and isinstance(source, str):
            return self._magic_card("4242424242424242")  # stripe-mock takes any token
        if token is None or token["object"] != "token":
            raise invalid(f"No such token: '{source}'", "resource_missing", param)
        if token["used"]:
            raise invalid(
                f"You cannot use a Stripe token more than once: {source}.",
                "token_already_used",
                param,
            )
        token["used"] = True
        return token["card"]
