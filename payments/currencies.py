"""Stripe's per-currency rules, as our validation applies them.

The fake Stripe keeps its own copy (fakes/stripe/currencies.py: a fake imports nothing of
this project); tests/test_moved_paths.py checks the two tables agree.

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
