"""What the mobile SDK may do with the keys it holds: a publishable key (`pk_test_...`) plus an
intent's client secret, or a customer's ephemeral key (`ek_test_...`).

docs.stripe.com/keys: publishable keys "can only create tokens/PaymentMethods and confirm
intents client-side with their client secret"; everything else needs a secret key. The
ephemeral key lets PaymentSheet list and detach the one customer's payment methods.
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


class ClientSide:
    def _check_client_key(self, api_key, endpoint, params, ids):
        """Refuse what a client-side key may not do (secret keys pass untouched)."""
        route = (endpoint.method, endpoint.template)
        if api_key.startswith("pk_"):
            if route not in PUBLISHABLE:
                raise StripeError(401, "invalid_request_error", SECRET_KEY_NEEDED)
            object_name = PUBLISHABLE[route]
            if object_name:
                found = self.lookup(ids[-1], object_name)
                # the SDK's own parameter, not in the server library's declarations
                given = str(params.pop("client_secret", "") or "")
                if not hmac.compare_digest(given, found["client_secret"]):
                    label = "PaymentIntent" if object_name == "payment_intent" else "SetupIntent"
                    raise invalid(
                        "The client_secret provided does not match the client_secret associated "
                        f"with the {label}.",
                        "parameter_invalid_string" if given else "parameter_missing",
                        "client_secret",
                    )
            return
        if api_key.startswith("ek_"):
            customer = self.ephemeral_key_customer(api_key)
            if customer is None:
                raise StripeError(401, "invalid_request_error", "Invalid API Key provided.",
                                  "api_key_expired")  # fmt: skip
            if route not in EPHEMERAL:
                raise StripeError(401, "invalid_request_error", SECRET_KEY_NEEDED)
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
