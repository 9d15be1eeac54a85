"""Sandbox mode: run the backend offline on the in-process fakes.

With DEBUG on and a service's credentials missing, `activate()` (called by the
WSGI/ASGI entry points and by the commands that talk to providers) installs
that service's fake beneath the real client code. Production never gets here:
backend.checks refuses to start with DEBUG off while a fake is active or a
credential is missing.
"""

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def wanted():
    """The services that would run on fakes in this configuration."""
    if not settings.DEBUG:
        return []
    services = []
    if not settings.STRIPE_SECRET_KEY and not settings.STRIPE_API_BASE:
        services.append("stripe")
    if not settings.PUSH_AUTH_KEY:
        services.append("push")
    if settings.TODOS_SANDBOX:
        services.append("todos")
    return services


def activate():
    """Install the fakes for every service `wanted()` names; return their names."""
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes

    services = wanted()
    if "stripe" in services:
        stripe_fakes.install_sandbox()
    if "push" in services:
        notification_fakes.install_sandbox_push()
    if "todos" in services:
        notification_fakes.install_sandbox_todos()
    if services:
        logger.warning(
            "Sandbox mode: %s run on in-process fakes (no credentials configured, DEBUG on). "
            "Pay with Stripe's test cards, e.g. 4242424242424242.",
            ", ".join(services),
        )
    return services


def active_fakes():
    """The services whose fake is installed in this process right now."""
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes

    active = []
    if stripe_fakes.is_installed():
        active.append("stripe")
    active.extend(notification_fakes.installed())
    return active
