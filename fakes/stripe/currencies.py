"""Stripe's per-currency rules, as the fake Stripe enforces them.

Minimum charge amounts in the currency's smallest unit, from Stripe's
"Minimum and maximum charge amounts" table (docs.stripe.com/currencies#minimum-and-maximum-charge-amounts),
and the zero-decimal currencies. The fake keeps its own copy of the provider's rules, so
a backend validating with its own table is checked against Stripe's, not against itself.
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
