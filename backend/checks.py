"""System checks that keep an insecure or fake-backed configuration out of production."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured


# A deployment check: `manage.py check --deploy` runs it, and so does every
# WSGI/ASGI start (see refuse_unsafe_start). It is not an ordinary check because
# test runners switch DEBUG off at run time and would trip over it.
@register(Tags.security, deploy=True)
def production_configuration(app_configs=None, **kwargs):
    if settings.DEBUG:
        return []
    errors = []
    if settings.SECRET_KEY == settings.DEVELOPMENT_SECRET_KEY or len(settings.SECRET_KEY) < 50:
        errors.append(
            Error(
                "SECRET_KEY is the public development key or too short, with DEBUG off.",
                hint="Set SECRET_KEY in the environment to 50+ random characters, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                id="backend.E001",
            )
        )
    missing = [
        name
        for name in (
            "STRIPE_SECRET_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "PUSH_AUTH_KEY",
            "PUSH_APPLICATION",
            "TODOS_API_URL",
        )
        if not getattr(settings, name)
    ]
    if missing:
        errors.append(
            Error(
                f"With DEBUG off these third-party settings must be set: {', '.join(missing)}.",
                hint="Sandbox mode (fake providers) exists only with DEBUG on.",
                id="backend.E002",
            )
        )
    if settings.STRIPE_API_BASE:
        errors.append(
            Error(
                "STRIPE_API_BASE redirects the stripe library away from Stripe, with DEBUG off.",
                hint="Unset STRIPE_API_BASE in production; it is for pointing at the sandbox service.",
                id="backend.E003",
            )
        )
    sandboxed = getattr(settings, "SANDBOX_SERVICES", [])
    if sandboxed:
        errors.append(
            Error(
                f"These providers point at the sandbox service with DEBUG off: "
                f"{', '.join(sandboxed)}.",
                hint="Production must talk to the real providers: configure their credentials.",
                id="backend.E004",
            )
        )
    return errors


# Stripe's key prefixes (https://docs.stripe.com/keys): sk_ secret, rk_ restricted
# (a secret key with fewer permissions), pk_ publishable (client side only); _live_ or
# _test_ after them. An ordinary check (runserver, migrate, check, test): it depends on
# DEBUG only where DEBUG being on is the problem, so a test run (DEBUG off) never trips.
SECRET_KEY_PREFIXES = ("sk_", "rk_")
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")


@register(Tags.security)
def stripe_keys(app_configs=None, **kwargs):
    secret = settings.STRIPE_SECRET_KEY
    errors = []
    if secret.startswith("pk_"):
        errors.append(
            Error(
                "STRIPE_SECRET_KEY holds a publishable key (pk_...): every call to Stripe "
                "would be refused.",
                hint="Set STRIPE_SECRET_KEY to the secret key (sk_...) or a restricted key "
                "(rk_...) from the Dashboard's API keys page; the publishable key goes in "
                "STRIPE_PUBLISHABLE_KEY.",
                id="backend.E005",
            )
        )
    if settings.DEBUG and secret.startswith(LIVE_KEY_PREFIXES):
        errors.append(
            Error(
                "STRIPE_SECRET_KEY is a live key (sk_live_/rk_live_) while DEBUG is on: real "
                "money, with debug pages that show settings and tracebacks to anyone.",
                hint="Develop with a test key (sk_test_..., rk_test_...) or none (sandbox "
                "mode); run with a live key only with DEBUG=false.",
                id="backend.E006",
            )
        )
    if settings.STRIPE_PUBLISHABLE_KEY.startswith(SECRET_KEY_PREFIXES):
        errors.append(
            Error(
                "STRIPE_PUBLISHABLE_KEY holds a secret key (sk_/rk_): it is handed to the "
                "app with every PaymentSheet, so anyone could use it.",
                hint="Set STRIPE_PUBLISHABLE_KEY to the publishable key (pk_...); roll the "
                "secret key in the Dashboard if it has been served.",
                id="backend.E007",
            )
        )
    return errors


def refuse_unsafe_start():
    """Called by the WSGI/ASGI entry points: a production process will not start unsafe."""
    errors = production_configuration() + stripe_keys()
    if errors:
        details = "; ".join(f"{e.id}: {e.msg} {e.hint}" for e in errors)
        raise ImproperlyConfigured(f"Refusing to start: {details}")
