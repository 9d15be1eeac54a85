"""Stripe's per-currency rules, shared by our validation and the fake Stripe.

Minimum charge amounts in the currency's smallest unit, from Stripe's
"Minimum and maximum charge amounts" table.
"""

MINIMUM_AMOUNTS = {
    "usd": 50,
    "eur": 50,
    "gbp": 30,
    "cad": 50,
    "aud": 50,
    "chf": 50,
    "jpy": 50,
    "dkk": 250,
    "nok": 300,
    "sek": 300,
    "mxn": 1000,
    "nzd": 50,
    "sgd": 50,
    "hkd": 400,
}
ZERO_DECIMAL = {"jpy"}
