"""FakeStripe: an in-memory, stateful engine that answers like Stripe's test mode.

It speaks Stripe's wire format (form-encoded requests, JSON answers, Stripe's
error bodies and status codes) through `handle()`, so the real stripe library
can talk to it through any transport. Objects are kept by id with Stripe's
prefixes; every state change records the event Stripe would send.
"""

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from urllib.parse import parse_qsl

from backend.fakes import FakeResponse, FaultPlan, TransportFault
from payments.currencies import MINIMUM_AMOUNTS, ZERO_DECIMAL
from payments.testing import cards

API_VERSION = "2025-10-29.clover"
CARD_FIELDS = {
    "number",
    "exp_month",
    "exp_year",
    "cvc",
    "name",
    "address_zip",
    "address_line1",
    "address_city",
    "address_state",
    "address_country",
    "currency",
}


class StripeError(Exception):
    def __init__(self, status, type, message, code=None, param=None, **extra):
        super().__init__(message)
        self.status = status
        self.body = {"type": type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param
        self.body.update(extra)


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


def invalid(message, code=None, param=None, status=400, **extra):
    return StripeError(status, "invalid_request_error", message, code, param, **extra)


KEY_PARTS = re.compile(r"[^\[\]]+|\[\]")


def decode_form(raw):
    """Stripe's form encoding (card[number]=..., expand[]=..., items[0][x]=...) to a dict."""
    result = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        if "[" not in key:
            result[key] = value
            continue
        parts = KEY_PARTS.findall(key)
        target = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "[]":
                continue
            if last or parts[index + 1] == "[]":
                if not last:  # name[]=value
                    target.setdefault(part, []).append(value)
                else:
                    target[part] = value
            else:
                target = target.setdefault(part, {})
    return result


def redact(params):
    """A copy of the parameters without card numbers or CVCs: the fake keeps no PAN either."""
    card = params.get("card")
    if isinstance(card, dict) and ("number" in card or "cvc" in card):
        card = {**card, "number": "****" + str(card.get("number", ""))[-4:]}
        card.pop("cvc", None)
        return {**params, "card": card}
    return params


def fingerprint(method, path, params):
    return hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()


def as_int(params, name, required=False):
    if name not in params:
        if required:
            raise invalid(f"Missing required param: {name}.", "parameter_missing", name)
        return None
    try:
        return int(params[name])
    except (TypeError, ValueError):
        raise invalid(
            f"Invalid integer: {params[name]}", "parameter_invalid_integer", name
        ) from None


def as_bool(params, name, default):
    if name not in params:
        return default
    value = str(params[name]).lower()
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {params[name]}", "parameter_invalid_boolean", name)
    return value == "true"


def format_amount(amount, currency):
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency}"
    symbol = {"usd": "$", "eur": "€", "gbp": "£"}.get(currency, "")
    return f"{symbol}{amount / 100:.2f} {currency}"


ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def empty_billing_details():
    return {"address": dict(ADDRESS), "email": None, "name": None, "phone": None, "tax_id": None}


class FakeStripe:
    """The engine. Thread-safe: every request runs under one lock, as one transaction."""

    def __init__(self):
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.faults = FaultPlan()
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self):
        with self._lock:
            self.objects = {}
            self._events = []
            self._snapshots = {}  # event id -> the object as JSON text, until someone reads it
            self.requests = []  # (method, path, params) of every request handled
            self._idempotent = {}
            self._card_of = {}  # card/pm id -> cards.TestCard (never the full number)
            self._used_tokens = set()
            self.delivered = set()
            self.faults.clear()

    def new_id(self, prefix):
        return f"{prefix}_{secrets.token_hex(6)}{next(self._ids):06d}"

    def get(self, object_id):
        found = self.objects[object_id]
        return self._materialize(found) if found["object"] == "event" else found

    def all(self, object_name):
        if object_name == "event":
            return self.events
        return [o for o in self.objects.values() if o["object"] == object_name]

    @property
    def charges(self):
        return self.all("charge")

    # --------------------------------------------------------------- routing
    # (method, path pattern, handler, fixed arguments). Plain retrieves and lists share
    # one handler each; `{id}` is an object id.
    LIST_FILTERS = {"limit", "starting_after", "ending_before", "created"}
    ROUTES = [
        ("POST", "/v1/tokens", "create_token", {}),
        ("GET", "/v1/tokens/{id}", "retrieve", {"object_name": "token"}),
        ("POST", "/v1/charges", "create_charge", {}),
        (
            "GET",
            "/v1/charges",
            "list_objects",
            {"object_name": "charge", "filters": {"customer", "payment_intent"}},
        ),
        ("GET", "/v1/charges/{id}", "retrieve", {"object_name": "charge"}),
        ("POST", "/v1/charges/{id}/capture", "capture_charge", {}),
        ("POST", "/v1/refunds", "create_refund", {}),
        ("GET", "/v1/refunds/{id}", "retrieve", {"object_name": "refund"}),
        ("POST", "/v1/payment_methods", "create_payment_method", {}),
        ("GET", "/v1/payment_methods/{id}", "retrieve_payment_method", {}),
        ("POST", "/v1/payment_intents", "create_payment_intent", {}),
        (
            "GET",
            "/v1/payment_intents",
            "list_objects",
            {"object_name": "payment_intent", "filters": {"customer"}},
        ),
        (
            "GET",
            "/v1/payment_intents/{id}",
            "retrieve",
            {"object_name": "payment_intent", "allowed": {"client_secret"}},
        ),
        ("POST", "/v1/payment_intents/{id}/confirm", "confirm_payment_intent", {}),
        ("POST", "/v1/payment_intents/{id}/cancel", "cancel_payment_intent", {}),
        ("POST", "/v1/customers", "create_customer", {}),
        ("GET", "/v1/customers/{id}", "retrieve", {"object_name": "customer"}),
        ("GET", "/v1/events", "list_objects", {"object_name": "event", "filters": {"type"}}),
        ("GET", "/v1/events/{id}", "retrieve", {"object_name": "event"}),
    ]
    # Indexed by resource (the segment after /v1/), so a request tries a handful of patterns.
    _routes = {}
    for _method, _pattern, _handler, _fixed in ROUTES:
        _regex = re.compile(_pattern.replace("{id}", "(?P<id>[^/]+)") + r"\Z")
        _routes.setdefault(_pattern.split("/")[2], []).append((_method, _regex, _handler, _fixed))
    del _method, _pattern, _handler, _fixed, _regex

    def handle(self, method, path, query, body, headers):
        method = method.upper()
        raw = query if method in ("GET", "DELETE") else body.decode()
        params = decode_form(raw)
        request_id = "req_" + secrets.token_hex(7)
        with self._lock:
            try:
                status, payload, extra = self._dispatch(method, path, params, headers)
            except StripeError as error:
                status, payload, extra = error.status, {"error": error.body}, {}
            if status >= 500:
                extra["Stripe-Should-Retry"] = "true"
            headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION, **extra}
            return FakeResponse.json(status, payload, headers)

    def _dispatch(self, method, path, params, headers):
        self.requests.append((method, path, redact(params)))
        handler, groups, allowed = None, {}, set()
        resource = path.split("/")[2] if path.startswith("/v1/") else ""
        for route_method, pattern, name, fixed in self._routes.get(resource, ()):
            match = pattern.match(path)
            if match:
                allowed.add(route_method)
                if route_method == method:
                    handler, groups = getattr(self, name), {**match.groupdict(), **fixed}
        if handler is None and allowed:
            raise invalid(
                f"Unrecognized request URL ({method}: {path}). This path accepts "
                f"{', '.join(sorted(allowed))}.",
                status=405,
            )
        if handler is None:
            raise invalid(
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                "or we can help at https://support.stripe.com/.",
                status=404,
            )
        api_key = self._authenticate(headers)
        fault = self.faults.before_request(method, path)
        if fault == "api_error":
            raise StripeError(500, "api_error", "An unknown error occurred.")
        if fault == "rate_limit":
            raise StripeError(
                429,
                "invalid_request_error",
                "Too many requests hit the API too quickly. We recommend an exponential "
                "backoff of your requests.",
                "rate_limit",
            )
        params.pop("expand", None)
        key = headers.get("Idempotency-Key") if method == "POST" else None
        result = self._replay(api_key, key, method, path, params) if key else None
        if result is None:
            try:
                status, payload = 200, handler(params, **groups)
            except StripeError as error:
                status, payload = error.status, {"error": error.body}
            # Like Stripe, keep the answer once the endpoint ran (success or a card error),
            # not when the parameters failed validation: fixed parameters may reuse the key.
            if key and (status == 200 or status == 402):
                answer = json.dumps(payload, separators=(",", ":")).encode()
                self._idempotent[(api_key, key)] = (
                    fingerprint(method, path, params),
                    status,
                    answer,
                )
            result = status, payload, {}
        if fault == "lost_response":
            raise TransportFault("lost_response")  # done, but the client never hears
        return result

    def _authenticate(self, headers):
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise StripeError(
                401,
                "invalid_request_error",
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        key = auth[7:].strip()
        if key.startswith(("sk_live_", "rk_live_")):
            raise StripeError(
                401,
                "invalid_request_error",
                "This is a fake Stripe: it refuses live-mode keys. Use a test key (sk_test_...).",
                "api_key_live_mode",
            )
        if not re.fullmatch(r"(sk|rk)_test_\w+", key):
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            raise StripeError(
                401,
                "invalid_request_error",
                f"Invalid API Key provided: {masked}",
                "api_key_invalid",
            )
        return key

    def _replay(self, api_key, key, method, path, params):
        stored = self._idempotent.get((api_key, key))
        if stored is None:
            return None
        request, status, payload = stored
        if request != fingerprint(method, path, params):
            raise StripeError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        return status, payload, {"Idempotent-Replayed": "true", "Original-Request": "req_replay"}

    # --------------------------------------------------------------- helpers
    @staticmethod
    def _only(params, allowed):
        for name in params:
            if name not in allowed:
                raise invalid(f"Received unknown parameter: {name}", "parameter_unknown", name)

    def _lookup(self, object_id, object_name, param="id"):
        found = self.objects.get(object_id or "")
        if found is not None and found["object"] == "event":
            self._materialize(found)
        if found is None or found["object"] != object_name:
            label = object_name.replace("_", " ")
            raise invalid(f"No such {label}: '{object_id}'", "resource_missing", param, status=404)
        return found

    def _emit(self, type, obj, previous=None):
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": None,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type,
        }
        # The event must show the object as it is now; JSON text is the cheapest snapshot
        # (one string, nothing for the garbage collector to walk) until it is read.
        self._snapshots[event["id"]] = (json.dumps(obj, separators=(",", ":")), previous)
        self.objects[event["id"]] = event
        self._events.append(event)
        return event

    def _materialize(self, event):
        if event["data"] is None:
            text, previous = self._snapshots.pop(event["id"])
            event["data"] = {"object": json.loads(text)}
            if previous is not None:
                event["data"]["previous_attributes"] = previous
        return event

    @property
    def events(self):
        """Every event so far, oldest first, as Stripe would send them."""
        with self._lock:
            return [self._materialize(event) for event in self._events]

    def _amount_and_currency(self, params):
        amount = as_int(params, "amount", required=True)
        currency = str(params.get("currency") or "").lower()
        if not currency:
            raise invalid("Missing required param: currency.", "parameter_missing", "currency")
        if currency not in MINIMUM_AMOUNTS:
            raise invalid(f"Invalid currency: {currency}.", "parameter_invalid_string", "currency")
        if amount < 1:
            raise invalid(
                "This value must be greater than or equal to 1.",
                "parameter_invalid_integer",
                "amount",
            )
        minimum = MINIMUM_AMOUNTS[currency]
        if amount < minimum:
            raise invalid(
                f"Amount must be at least {format_amount(minimum, currency)}",
                "amount_too_small",
                "amount",
            )
        if amount > 99999999:
            raise invalid("Amount must be no more than $999,999.99", "amount_too_large", "amount")
        return amount, currency

    # -------------------------------------------------------------- cards
    def _validate_card(self, card):
        if not isinstance(card, dict):
            raise invalid("Invalid object", "parameter_invalid_object", "card")
        for name in card:
            if name not in CARD_FIELDS:
                raise invalid(
                    f"Received unknown parameter: card[{name}]",
                    "parameter_unknown",
                    f"card[{name}]",
                )
        for name in ("number", "exp_month", "exp_year"):
            if not card.get(name):
                raise invalid(
                    f"Missing required param: card[{name}].", "parameter_missing", f"card[{name}]"
                )
        number = re.sub(r"[ -]", "", str(card["number"]))
        if not number.isdigit() or not 12 <= len(number) <= 19:
            raise bad_card_data("invalid_number")
        if not cards.luhn_valid(number):
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
        return cards.card_for(number), int(month), year_value, bool(cvc)

    @staticmethod
    def _fingerprint(number):
        return hashlib.sha256(b"fake-stripe:" + number.encode()).hexdigest()[:16]

    def _new_card(self, test_card, month, year, cvc_given):
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
            "fingerprint": self._fingerprint(test_card.number),
            "funding": test_card.funding,
            "last4": test_card.last4,
            "metadata": {},
            "name": None,
            "networks": {"preferred": None},
            "regulated_status": "unregulated",
            "tokenization_method": None,
        }
        self._card_of[card["id"]] = test_card
        return card

    def _magic_card(self, number):
        year = time.gmtime().tm_year + 5
        return self._new_card(cards.CARDS[number], 12, year, True)

    def _pm_card_details(self, test_card, month, year):
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
            "fingerprint": self._fingerprint(test_card.number),
            "funding": test_card.funding,
            "generated_from": None,
            "last4": test_card.last4,
            "networks": {"available": [test_card.network], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        }

    # ------------------------------------------------------------- tokens
    def create_token(self, params):
        self._only(params, {"card", "customer"})
        if "card" not in params:
            raise invalid("Missing required param: card.", "parameter_missing", "card")
        test_card, month, year, cvc_given = self._validate_card(params["card"])
        return self._store_token(self._new_card(test_card, month, year, cvc_given))

    def _store_token(self, card):
        token = {
            "id": self.new_id("tok"),
            "object": "token",
            "card": card,
            "client_ip": None,
            "created": int(time.time()),
            "livemode": False,
            "type": "card",
            "used": False,
        }
        self.objects[token["id"]] = token
        return token

    def _card_from_source(self, source):
        """A source id (token, magic token) becomes the card it carries; tokens are single-use."""
        if source in cards.TOKENS:
            return self._magic_card(cards.TOKENS[source])
        token = self.objects.get(source)
        if token is None or token["object"] != "token":
            raise invalid(f"No such token: '{source}'", "resource_missing", "source", status=404)
        if token["id"] in self._used_tokens:
            raise invalid(
                f"You cannot use a Stripe token more than once: {source}.",
                "token_already_used",
                "source",
            )
        self._used_tokens.add(token["id"])
        token["used"] = True
        return token["card"]

    # ------------------------------------------------------------ charges
    def create_charge(self, params):
        self._only(
            params,
            {
                "amount",
                "currency",
                "source",
                "customer",
                "description",
                "metadata",
                "capture",
                "receipt_email",
                "statement_descriptor",
                "statement_descriptor_suffix",
                "transfer_group",
            },
        )
        amount, currency = self._amount_and_currency(params)
        capture = as_bool(params, "capture", True)
        customer_id = params.get("customer")
        if params.get("source"):
            card = self._card_from_source(params["source"])
        elif customer_id:
            customer = self._lookup(customer_id, "customer", "customer")
            if not customer["default_source"]:
                raise invalid("Cannot charge a customer that has no active card", "missing", "card")
            card = self.objects[customer["default_source"]]
        else:
            raise invalid("Must provide source or customer.", "parameter_missing", "source")
        test_card = self._card_of[card["id"]]
        decline = test_card.decline
        if decline is None and test_card.requires_3ds:
            decline = cards.AUTHENTICATION_REQUIRED
        charge = self._new_charge(amount, currency, params, card, test_card, decline, capture)
        charge["customer"] = customer_id
        charge["source"] = card
        if decline:
            self._emit("charge.failed", charge)
            raise self._card_error(decline, charge=charge["id"])
        self._emit("charge.succeeded", charge)
        return charge

    def _card_error(self, decline, **extra):
        return StripeError(
            402,
            "card_error",
            decline.message,
            decline.code,
            decline.param,
            decline_code=decline.decline_code,
            **extra,
        )

    def _new_charge(
        self,
        amount,
        currency,
        params,
        card,
        test_card,
        decline,
        capture,
        payment_intent=None,
        payment_method=None,
    ):
        succeeded = decline is None
        charge = {
            "id": self.new_id("ch"),
            "object": "charge",
            "amount": amount,
            "amount_captured": amount if succeeded and capture else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": self.new_id("txn") if succeeded else None,
            "billing_details": empty_billing_details(),
            "calculated_statement_descriptor": "FAKE STRIPE",
            "captured": succeeded and capture,
            "created": int(time.time()),
            "currency": currency,
            "customer": None,
            "description": params.get("description"),
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": decline.code if decline else None,
            "failure_message": decline.message if decline else None,
            "fraud_details": {},
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "on_behalf_of": None,
            "outcome": self._outcome(decline),
            "paid": succeeded,
            "payment_intent": payment_intent,
            "payment_method": payment_method or card["id"],
            "payment_method_details": {
                "card": {
                    "amount_authorized": amount if succeeded else None,
                    "authorization_code": None,
                    "brand": test_card.network,
                    "checks": {
                        "address_line1_check": None,
                        "address_postal_code_check": None,
                        "cvc_check": "pass" if succeeded else "unchecked",
                    },
                    "country": test_card.country,
                    "exp_month": card["exp_month"],
                    "exp_year": card["exp_year"],
                    "fingerprint": card["fingerprint"],
                    "funding": test_card.funding,
                    "installments": None,
                    "last4": test_card.last4,
                    "mandate": None,
                    "network": test_card.network,
                    "network_token": {"used": False},
                    "three_d_secure": None,
                    "wallet": None,
                },
                "type": "card",
            },
            "receipt_email": params.get("receipt_email"),
            "receipt_number": None,
            "receipt_url": None,
            "refunded": False,
            "refunds": {"object": "list", "data": [], "has_more": False, "url": ""},
            "review": None,
            "shipping": None,
            "source": None,
            "source_transfer": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "status": "succeeded" if succeeded else "failed",
            "transfer_data": None,
            "transfer_group": params.get("transfer_group"),
        }
        charge["refunds"]["url"] = f"/v1/charges/{charge['id']}/refunds"
        if succeeded:
            charge["receipt_url"] = f"https://pay.stripe.com/receipts/fake/{charge['id']}"
        self.objects[charge["id"]] = charge
        return charge

    @staticmethod
    def _outcome(decline):
        if decline is None:
            return {
                "advice_code": None,
                "network_advice_code": None,
                "network_decline_code": None,
                "network_status": "approved_by_network",
                "reason": None,
                "risk_level": "normal",
                "risk_score": 32,
                "seller_message": "Payment complete.",
                "type": "authorized",
            }
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": decline.network_status,
            "reason": "highest_risk_level"
            if decline.outcome_type == "blocked"
            else decline.decline_code,
            "risk_level": decline.risk_level,
            "risk_score": 95 if decline.risk_level == "highest" else 32,
            "seller_message": decline.seller_message,
            "type": decline.outcome_type,
        }

    def retrieve(self, params, id, object_name, allowed=frozenset()):
        self._only(params, allowed)
        return self._lookup(id, object_name)

    def list_objects(self, params, object_name, filters):
        items = self.all(object_name)
        url = f"/v1/{object_name}s"
        self._only(params, self.LIST_FILTERS | filters)
        limit = as_int(params, "limit") or 10
        if not 1 <= limit <= 100:
            raise invalid(
                "This value must be less than or equal to 100.",
                "parameter_invalid_integer",
                "limit",
            )
        for name in ("customer", "payment_intent", "type"):
            if params.get(name):
                items = [i for i in items if i.get(name) == params[name]]
        created = params.get("created")
        if isinstance(created, dict) and created.get("gte"):
            items = [i for i in items if i["created"] >= int(created["gte"])]
        items = list(reversed(items))  # newest first; insertion order breaks same-second ties
        if params.get("starting_after"):
            ids = [i["id"] for i in items]
            if params["starting_after"] not in ids:
                raise invalid(
                    f"No such object: '{params['starting_after']}'",
                    "resource_missing",
                    "starting_after",
                    status=404,
                )
            items = items[ids.index(params["starting_after"]) + 1 :]
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}

    def capture_charge(self, params, id):
        self._only(params, {"amount"})
        charge = self._lookup(id, "charge")
        if charge["captured"]:
            raise invalid("This charge has already been captured.", "charge_already_captured")
        if charge["status"] != "succeeded":
            raise invalid(
                "This charge cannot be captured because it failed.", "charge_not_capturable"
            )
        amount = as_int(params, "amount") or charge["amount"]
        if amount > charge["amount"]:
            raise invalid(
                "The amount to capture exceeds the authorized amount.", "amount_too_large", "amount"
            )
        charge.update(captured=True, amount_captured=amount)
        self._emit("charge.captured", charge, {"captured": False, "amount_captured": 0})
        return charge

    # ------------------------------------------------------------ refunds
    def create_refund(self, params):
        self._only(params, {"charge", "payment_intent", "amount", "reason", "metadata"})
        if params.get("payment_intent"):
            intent = self._lookup(params["payment_intent"], "payment_intent", "payment_intent")
            if not intent["latest_charge"]:
                raise invalid(
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                    "charge_not_refundable",
                )
            charge = self.objects[intent["latest_charge"]]
        elif params.get("charge"):
            charge = self._lookup(params["charge"], "charge", "charge")
        else:
            raise invalid(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                "parameter_missing",
                "charge",
            )
        if charge["status"] != "succeeded":
            raise invalid(
                f"Charge {charge['id']} has failed and cannot be refunded.", "charge_not_refundable"
            )
        if charge["refunded"]:
            raise invalid(
                f"Charge {charge['id']} has already been refunded.", "charge_already_refunded"
            )
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        amount = as_int(params, "amount")
        amount = remaining if amount is None else amount
        if amount < 1:
            raise invalid(
                "This value must be greater than or equal to 1.",
                "parameter_invalid_integer",
                "amount",
            )
        if amount > remaining:
            raise invalid(
                f"Refund amount ({format_amount(amount, charge['currency'])}) is greater than "
                f"unrefunded amount on charge ({format_amount(remaining, charge['currency'])})",
                "amount_too_large",
                "amount",
            )
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": self.new_id("txn"),
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "destination_details": {
                "card": {
                    "reference_status": "pending",
                    "reference_type": "acquirer_reference_number",
                    "type": "refund",
                },
                "type": "card",
            },
            "metadata": params.get("metadata") or {},
            "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"),
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        self.objects[refund["id"]] = refund
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        charge["refunds"]["data"].insert(0, refund)
        self._emit("refund.created", refund)
        self._emit("charge.refunded", charge, previous)
        return refund

    def create_payment_method(self, params):
        self._only(params, {"type", "card", "billing_details", "metadata"})
        if params.get("type") != "card":
            raise invalid("Missing required param: type.", "parameter_missing", "type")
        card = params.get("card") or {}
        if isinstance(card, dict) and set(card) == {"token"}:
            source = self._card_from_source(card["token"])
            test_card, month, year = (
                self._card_of[source["id"]],
                source["exp_month"],
                source["exp_year"],
            )
        else:
            test_card, month, year, _ = self._validate_card(card)
        return self._store_payment_method(test_card, month, year, params.get("metadata"))

    def _store_payment_method(self, test_card, month, year, metadata=None):
        method = {
            "id": self.new_id("pm"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": empty_billing_details(),
            "card": self._pm_card_details(test_card, month, year),
            "created": int(time.time()),
            "customer": None,
            "livemode": False,
            "metadata": metadata or {},
            "type": "card",
        }
        self.objects[method["id"]] = method
        self._card_of[method["id"]] = test_card
        return method

    def _payment_method(self, method_id, param="payment_method"):
        if method_id in cards.PAYMENT_METHODS:
            test_card = cards.CARDS[cards.PAYMENT_METHODS[method_id]]
            return self._store_payment_method(test_card, 12, time.gmtime().tm_year + 5)
        return self._lookup(method_id, "payment_method", param)

    def retrieve_payment_method(self, params, id):
        if id in cards.PAYMENT_METHODS:
            return self._payment_method(id, "id")
        return self._lookup(id, "payment_method")

    # ---------------------------------------------------- payment intents
    INTENT_PARAMS = {
        "amount",
        "currency",
        "payment_method",
        "confirm",
        "customer",
        "description",
        "metadata",
        "payment_method_types",
        "automatic_payment_methods",
        "return_url",
        "capture_method",
        "off_session",
        "setup_future_usage",
        "receipt_email",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "error_on_requires_action",
    }

    def create_payment_intent(self, params):
        self._only(params, self.INTENT_PARAMS)
        amount, currency = self._amount_and_currency(params)
        method = (
            self._payment_method(params["payment_method"]) if params.get("payment_method") else None
        )
        if params.get("customer"):
            self._lookup(params["customer"], "customer", "customer")
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
            "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
            "confirmation_method": "automatic",
            "created": int(time.time()),
            "currency": currency,
            "customer": params.get("customer"),
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
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
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "processing": None,
            "receipt_email": params.get("receipt_email"),
            "review": None,
            "setup_future_usage": params.get("setup_future_usage"),
            "shipping": None,
            "source": None,
            "statement_descriptor": params.get("statement_descriptor"),
            "statement_descriptor_suffix": params.get("statement_descriptor_suffix"),
            "status": "requires_confirmation" if method else "requires_payment_method",
            "transfer_data": None,
            "transfer_group": None,
        }
        self.objects[intent_id] = intent
        self._emit("payment_intent.created", intent)
        if as_bool(params, "confirm", False):
            return self._confirm(intent, params)
        return intent

    def confirm_payment_intent(self, params, id):
        self._only(
            params,
            {
                "payment_method",
                "return_url",
                "off_session",
                "receipt_email",
                "error_on_requires_action",
                "setup_future_usage",
            },
        )
        return self._confirm(self._lookup(id, "payment_intent"), params)

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
        test_card = self._card_of[intent["payment_method"]]
        off_session = as_bool(params, "off_session", False)
        if test_card.requires_3ds and test_card.decline is None and not off_session:
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
            cards.AUTHENTICATION_REQUIRED if test_card.requires_3ds else None
        )
        return self._settle_intent(intent, decline)

    def _settle_intent(self, intent, decline):
        method = self.objects[intent["payment_method"]]
        test_card = self._card_of[method["id"]]
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
            True,
            intent["id"],
            method["id"],
        )
        charge["customer"] = intent["customer"]
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
                "param": decline.param,
                "payment_method": method,
                "type": "card_error",
            }
            self._emit("charge.failed", charge)
            self._emit("payment_intent.payment_failed", intent)
            raise self._card_error(
                decline, charge=charge["id"], payment_intent=json.loads(json.dumps(intent))
            )
        intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
        self._emit("charge.succeeded", charge)
        self._emit("payment_intent.succeeded", intent)
        return intent

    def complete_authentication(self, intent_id, succeed=True):
        """What the customer does in the app's 3-D Secure sheet: pass or fail the challenge."""
        with self._lock:
            intent = self._lookup(intent_id, "payment_intent")
            if intent["status"] != "requires_action":
                raise ValueError(f"{intent_id} is {intent['status']}, not requires_action")
            decline = None if succeed else Decline3DS
            try:
                return self._settle_intent(intent, decline)
            except StripeError:
                return intent

    def cancel_payment_intent(self, params, id):
        self._only(params, {"cancellation_reason"})
        intent = self._lookup(id, "payment_intent")
        if intent["status"] in ("succeeded", "canceled"):
            raise invalid(
                f"You cannot cancel this PaymentIntent because it has a status of {intent['status']}. "
                "Only a PaymentIntent with one of the following statuses may be canceled: "
                "requires_payment_method, requires_capture, requires_confirmation, requires_action, "
                "processing.",
                "payment_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            canceled_at=int(time.time()),
            next_action=None,
            cancellation_reason=params.get("cancellation_reason"),
        )
        self._emit("payment_intent.canceled", intent)
        return intent

    # ----------------------------------------------------------- customers
    def create_customer(self, params):
        self._only(
            params,
            {"email", "name", "description", "metadata", "source", "phone", "payment_method"},
        )
        customer_id = self.new_id("cus")
        default_source = None
        if params.get("source"):
            card = self._card_from_source(params["source"])
            card["customer"] = customer_id
            self.objects[card["id"]] = card
            default_source = card["id"]
        customer = {
            "id": customer_id,
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": int(time.time()),
            "currency": None,
            "default_source": default_source,
            "delinquent": False,
            "description": params.get("description"),
            "discount": None,
            "email": params.get("email"),
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": None,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": params.get("phone"),
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }
        self.objects[customer_id] = customer
        self._emit("customer.created", customer)
        return customer

    # ------------------------------------------------------------ persistence
    # Everything but the lock and the fault plan (scripted per process, not state).
    _NOT_STATE = ("_lock", "faults")

    def dump_state(self):
        """The engine's whole state as a picklable dict (the live containers: pickle or copy)."""
        with self._lock:
            state = {k: v for k, v in vars(self).items() if k not in self._NOT_STATE}
            counter = next(self._ids)
            self._ids = itertools.count(counter)
            state["_ids"] = counter
            return state

    def load_state(self, state):
        """Replace the engine's state with one from dump_state() (faults are kept)."""
        with self._lock:
            for name, value in state.items():
                if name not in self._NOT_STATE:
                    setattr(self, name, value)
            self._ids = itertools.count(state.get("_ids", 1))


Decline3DS = cards.Decline(
    "payment_intent_authentication_failure",
    "authentication_not_handled",
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
)


def sign_webhook(payload, secret, timestamp=None):
    """The Stripe-Signature header Stripe would send for `payload` (bytes or str)."""
    if isinstance(payload, bytes):
        payload = payload.decode()
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    signature = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={signature}"
