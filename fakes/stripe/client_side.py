"""What the mobile SDK may do with the keys it holds: a publishable key (`pk_test_...`) plus an
intent's client secret, or a customer's ephemeral key (`ek_test_...`).

docs.stripe.com/keys: publishable keys "can only create tokens/PaymentMethods and confirm
intents client-side with their client secret"; everything else needs a secret key and
answers 401 `secret_key_required` (docs.stripe.com/error-codes#secret-key-required). The
publishable key comes as the Authorization header or, as Stripe.js sends it, as the `key`
form parameter (pipeline.Pipeline._authenticate). The ephemeral key lets PaymentSheet list
and detach the one customer's payment methods.
"""

import hmac

from fakes.stripe.wire import StripeError, invalid

SECRET_KEY_NEEDED = (
    "This API call cannot be made with a publishable API key. Please use a secret API key. "
    "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
)

PUBLISHABLE = {
    ("POST", "/v1/tokens"): None,
    ("POST", "/v1/payment_methods"): None,
    ("POST", "/v1/sources"): None,  # legacy Sources, created by Stripe.js's createSource
    ("GET", "/v1/payment_intents/{intent}"): "payment_intent",
    ("POST", "/v1/payment_intents/{intent}/confirm"): "payment_intent",
    ("GET", "/v1/setup_intents/{intent}"): "setup_intent",
    ("POST", "/v1/setup_intents/{intent}/confirm"): "setup_intent",
}
EPHEMERAL = {
    ("GET", "/v1/customers/{customer}/payment_methods"),
    ("GET", "/v1/customers/{customer}"),
    ("GET", "/v1/payment_methods"),
    ("POST", "/v1/payment_methods/{payment_method}/detach"),
}


def secret_matches(given, expected):
    """A constant-time comparison that any text survives (hmac.compare_digest refuses str
    outside ASCII with a TypeError: compare the UTF-8 bytes instead)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


class ClientSide:
    def _check_client_secret(self, endpoint, params, ids, required=False):
        """An intent's client_secret, if given (or when `required`: a publishable key), must
        be the intent's (docs.stripe.com/api/payment_intents/object#payment_intent_object-client_secret)."""
        object_name = PUBLISHABLE.get((endpoint.method, endpoint.template))
        if not object_name or ("client_secret" not in params and not required):
            return
        found = self.lookup(ids[-1], object_name)
        # the SDK's own parameter, not in the server library's declarations of confirm
        given = params.pop("client_secret", "")
        given = given if isinstance(given, str) else ""
        if not secret_matches(given, found["client_secret"]):
            label = "PaymentIntent" if object_name == "payment_intent" else "SetupIntent"
            raise invalid(
                "The client_secret provided does not match the client_secret associated "
                f"with the {label}.",
                "parameter_invalid_string" if given else "parameter_missing",
                "client_secret",
            )

    def _card_data_from_the_browser(self, endpoint, params):
        """Stripe.js confirms an intent with the card itself (payment_method_data[card][number]
        ..., publishable key only: a server library cannot send it, so stripe-python declares
        no `card` there). It becomes a PaymentMethod, as Stripe creates one, and the intent
        is confirmed with it (docs.stripe.com/api/payment_intents/confirm#confirm_payment_intent-payment_method_data)."""
        data = params.get("payment_method_data")
        if not endpoint.template.endswith("/confirm") or not isinstance(data, dict):
            return
        if not isinstance(data.get("card"), dict):
            return
        method = self.create_payment_method(
            {"type": data.get("type", "card"), "card": data["card"]}
        )
        del params["payment_method_data"]
        params["payment_method"] = method["id"]

    def _check_client_key(self, api_key, endpoint, params, ids):
        """Refuse what a client-side key may not do (secret keys pass untouched)."""
        route = (endpoint.method, endpoint.template)
        if api_key.startswith("pk_"):
            if route not in PUBLISHABLE:
                raise StripeError(
                    401, "invalid_request_error", SECRET_KEY_NEEDED, "secret_key_required"
                )
            self._check_client_secret(endpoint, params, ids, required=True)
            self._card_data_from_the_browser(endpoint, params)
            return
        if api_key.startswith("ek_"):
            customer = self.ephemeral_key_customer(api_key)
            if customer is None:
                raise StripeError(401, "invalid_request_error", "Invalid API Key provided.",
                                  "api_key_expired")  # fmt: skip
            if route not in EPHEMERAL:
                raise StripeError(
                    401, "invalid_request_error", SECRET_KEY_NEEDED, "secret_key_required"
                )
            if endpoint.template.startswith("/v1/customers/"):
                allowed = ids[0] == customer
            elif endpoint.method == "GET":
                allowed = params.get("customer") == customer
            else:
                method = self.objects.get(ids[-1]) or {}
                allowed = method.get("customer") == customer
            if not allowed:
                raise StripeError(
                    403,
                    "invalid_request_error",
                    "The provided key does not have access to this resource.",
                )
