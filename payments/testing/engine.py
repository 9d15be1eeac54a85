"""Deprecated: the fake Stripe's engine is fakes.stripe (this alias goes in the next release).

`payments.testing.engine` is fakes.stripe.engine (FakeStripe), and each old submodule
(`payments.testing.engine.wire`, `.routes`, `.resources.charges`, ...) the module of the
same name under fakes.stripe.
"""

from conventions.deprecation import alias_module

alias_module(
    __name__,
    "fakes.stripe.engine",
    package="fakes.stripe",
    submodules=(
        "client_side",
        "coverage",
        "events",
        "generic",
        "params",
        "pipeline",
        "routes",
        "store",
        "wire",
        "resources",
        "resources.charges",
        "resources.customers",
        "resources.ephemeral_keys",
        "resources.payment_intents",
        "resources.payment_methods",
        "resources.setup_intents",
        "resources.tokens",
    ),
)
