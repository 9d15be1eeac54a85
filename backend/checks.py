"""System checks that keep an insecure or fake-backed configuration out of production."""

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from backend import sandbox


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
                hint="Unset STRIPE_API_BASE in production; it is for pointing at fakeservices.",
                id="backend.E003",
            )
        )
    active = sandbox.active_fakes()
    if active:
        errors.append(
            Error(
                f"Fake third-party services are active with DEBUG off: {', '.join(active)}.",
                hint="Production must talk to the real providers; remove the fakes.",
                id="backend.E004",
            )
        )
    return errors


def refuse_unsafe_start():
    """Called by the WSGI/ASGI entry points: a production process will not start unsafe."""
    errors = production_configuration()
    if errors:
        details = "; ".join(f"{e.id}: {e.msg} {e.hint}" for e in errors)
        raise ImproperlyConfigured(f"Refusing to start: {details}")
