"""What `manage.py fakeservices` serves, and a helper for tests to serve it in a thread."""

from backend.fakes import FakeServer


def default_mounts():
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes

    return {
        "/stripe": stripe_fakes.shared_engine,
        "/push": notification_fakes.push_provider,
        "/todos-api": notification_fakes.todo_api,
    }


def start_fake_services(mounts=None):
    """Start the fake services on a free loopback port in a thread; stop with .stop()."""
    return FakeServer(mounts or default_mounts(), port=0).start()
