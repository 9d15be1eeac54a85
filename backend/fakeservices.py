"""What `manage.py fakeservices` serves, and a helper for tests to serve it in a thread."""

from fakes.server import FakeServer


def default_mounts(stripe_fake=None):
    """Stripe under /stripe (and its 3-D Secure page under /sandbox when `stripe_fake` is a
    SandboxStripe), push under /push, todos under /todos-api."""
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes
    from payments.sandbox_views import ThreeDSecurePages
    from payments.testing.sandbox import SandboxStripe

    mounts = {
        "/stripe": stripe_fake or stripe_fakes.shared_engine,
        "/push": notification_fakes.push_provider,
        "/todos-api": notification_fakes.todo_api,
    }
    if isinstance(stripe_fake, SandboxStripe):
        mounts["/sandbox"] = ThreeDSecurePages(stripe_fake)
    return mounts


def forwarding_stripe(forward_to=None, secret=None, engine=None, retry_delays=None):
    """The shared engine as a SandboxStripe (3-D Secure page links); with `forward_to`, every
    event it emits is POSTed there, signed with `secret` (like `stripe listen
    --forward-to`). Returns (the wrapper to mount, its forwarder or None)."""
    from backend.sandbox_store import MemoryStore
    from fakes.stripe.forwarding import RETRY_DELAYS, WebhookForwarder, http_target
    from payments import testing as stripe_fakes
    from payments.testing.sandbox import SandboxStripe

    forwarder = None
    if forward_to:
        forwarder = WebhookForwarder(
            http_target(forward_to), secret, retry_delays=retry_delays or RETRY_DELAYS
        )
    wrapper = SandboxStripe(engine or stripe_fakes.shared_engine, MemoryStore(), forwarder)
    if forwarder is not None:
        forwarder.on_delivered = wrapper.mark_delivered
    return wrapper, forwarder


def start_fake_services(mounts=None, port=0):
    """Start the fake services on 127.0.0.1 (`port` 0: a free one) in a thread; .stop()."""
    return FakeServer(mounts or default_mounts(), port=port).start()
