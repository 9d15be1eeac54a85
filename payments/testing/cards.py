"""Deprecated: Stripe's test cards are fakes.stripe.cards (this alias goes in the next release)."""

from conventions.deprecation import alias_module

alias_module(__name__, "fakes.stripe.cards")
