"""Helpers for tests to serve the fakes over HTTP in a thread.

- `start_fake_services()`: the plain fakes (this process's engine and providers) under
  /stripe, /push and /todos-api, nothing else (FakeServer);
- `start_sandbox_service()`: the whole sandbox service (fakes.service: its own fakes,
  state, control API, console, 3-D Secure page, webhook forwarding), as `manage.py
  fakeservices` runs it, in a thread.
"""

from fakes.server import FakeServer
from fakes.service import start_service as start_sandbox_service

__all__ = ["default_mounts", "start_fake_services", "start_sandbox_service"]


def default_mounts(stripe_fake=None):
    """Stripe under /stripe, push under /push, todos under /todos-api."""
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes

    return {
        "/stripe": stripe_fake or stripe_fakes.shared_engine,
        "/push": notification_fakes.push_provider,
        "/todos-api": notification_fakes.todo_api,
    }


def start_fake_services(mounts=None, port=0):
    """Start the fake services on 127.0.0.1 (`port` 0: a free one) in a thread; .stop()."""
    return FakeServer(mounts or default_mounts(), port=port).start()
