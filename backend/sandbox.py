"""Sandbox mode: run the backend offline on the fakes, like Stripe's test mode.

With DEBUG on and a service's credentials missing, `activate()` (called by the
WSGI/ASGI entry points and by the commands that talk to providers) installs
that service's fake beneath the real client code. The fakes' state lives in
settings.SANDBOX_STATE (a SQLite file shared by every worker and kept across
restarts, or "memory"); the fake Stripe's events are delivered, signed, to this
backend's own webhook endpoint (a sandbox webhook secret is generated when
STRIPE_WEBHOOK_SECRET is empty); 3-D Secure is completed on /sandbox/3ds/<pi>/.
Production never gets here: backend.checks refuses to start with DEBUG off while
a fake is active or a credential is missing.
"""

import logging

from django.conf import settings

logger = logging.getLogger(__name__)

_active = {}  # "store", "forwarder", "stripe" once activated


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


def webhook_forwarder(secret):
    from fakes.stripe.forwarding import WebhookForwarder, http_target
    from payments.testing.forwarding import wsgi_target

    url = settings.SANDBOX_WEBHOOK_FORWARD_TO
    return WebhookForwarder(http_target(url) if url else wsgi_target(), secret)


def activate():
    """Install the fakes for every service `wanted()` names; return their names."""
    from backend import sandbox_store
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes

    services = wanted()
    if not services:
        return services
    store = sandbox_store.from_settings()
    _active.clear()
    _active["store"] = store
    if "stripe" in services:
        if not settings.STRIPE_WEBHOOK_SECRET:  # shared by every worker, through the store
            settings.STRIPE_WEBHOOK_SECRET = store.secret(
                "stripe_webhook_secret", sandbox_store.new_webhook_secret
            )
        forwarder = None
        if settings.SANDBOX_WEBHOOKS:
            forwarder = webhook_forwarder(settings.STRIPE_WEBHOOK_SECRET)
        wrapper = stripe_fakes.install_sandbox(store, forwarder, settings.SANDBOX_PUBLIC_URL)
        if forwarder is not None:
            forwarder.on_delivered = wrapper.mark_delivered
        _active.update(stripe=wrapper, forwarder=forwarder)
    if "push" in services:
        notification_fakes.install_sandbox_push(store)
    if "todos" in services:
        notification_fakes.install_sandbox_todos(store)
    logger.warning(
        "Sandbox mode: %s run on fakes (no credentials configured, DEBUG on); state in %s. "
        "Pay with Stripe's test cards, e.g. 4242424242424242.",
        ", ".join(services),
        store.location,
    )
    return services


def active(name):
    """What activate() installed: "store", "stripe" (SandboxStripe) or "forwarder"; or None."""
    return _active.get(name)


def state_location():
    """Where the sandbox state lives (a file path or "memory"), or None outside sandbox."""
    if not active_fakes() or "store" not in _active:
        return None
    return _active["store"].location


def active_fakes():
    """The services whose fake is installed in this process right now."""
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes

    active = []
    if stripe_fakes.is_installed():
        active.append("stripe")
    active.extend(notification_fakes.installed())
    return active
