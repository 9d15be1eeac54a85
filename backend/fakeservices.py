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


def start_fake_services(mounts=None, port=0):
    """Start the fake services on 127.0.0.1 (`port` 0: a free one) in a thread; .stop()."""
    return FakeServer(mounts or default_mounts(), port=port).start()
