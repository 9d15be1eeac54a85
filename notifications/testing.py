"""The push and todo fakes wired into this backend's settings and HTTP session.

The fakes themselves are fakes.pushwoosh.FakePushProvider (the Pushwoosh Remote API)
and fakes.todos.FakeTodoApi (JSONPlaceholder), re-exported here. `fake_push()` /
`fake_todos()` mount one on notifications.http.session (a transport adapter, no socket)
and point the settings (PUSH_*, TODOS_API_URL) at it; sandbox mode installs them for
good; `manage.py fakeservices` serves them over HTTP.
`FakePushProvider.outbox` is what users would have received, like mail.outbox.
"""

import contextlib

from django.conf import settings
from django.test import override_settings

from fakes.pushwoosh import (
    FAKE_APPLICATION,
    FAKE_AUTH,
    FAKE_PUSH_URL,
    TRANSACTION_ID_WINDOW_SECONDS,
    FakePushProvider,
)
from fakes.todos import FAKE_TODOS_URL, FakeTodoApi, seed_todos, seed_users
from fakes.transport import RequestsAdapter, mounted
from notifications import todos
from notifications.http import session

__all__ = [
    "FAKE_APPLICATION",
    "FAKE_AUTH",
    "FAKE_PUSH_URL",
    "FAKE_TODOS_URL",
    "TRANSACTION_ID_WINDOW_SECONDS",
    "FakeNotificationServicesMixin",
    "FakePushProvider",
    "FakeTodoApi",
    "fake_push",
    "fake_todos",
    "install_sandbox_push",
    "install_sandbox_todos",
    "installed",
    "push_provider",
    "seed_todos",
    "seed_users",
    "todo_api",
]

push_provider = FakePushProvider()
todo_api = FakeTodoApi()
_installed = set()


class _MountedFake(contextlib.ContextDecorator):
    """Reset `fake`, mount it on our session under `url`, and point the settings at it."""

    def __init__(self, fake, url, settings_for):
        self.fake, self.url, self.settings_for = fake, url, settings_for
        self._stacks = []

    def __enter__(self):
        self.fake.reset()
        stack = contextlib.ExitStack()
        stack.enter_context(override_settings(**self.settings_for(self.fake)))
        stack.enter_context(mounted(session, self.url, self.fake))
        self._stacks.append(stack)
        return self.fake

    def __exit__(self, *exc_info):
        self._stacks.pop().close()
        return False


def fake_push(provider=None):
    """Point PushService at a fresh fake provider for a block, test or class; yields it."""
    return _MountedFake(
        provider or push_provider,
        FAKE_PUSH_URL,
        lambda fake: {
            "PUSH_API_URL": FAKE_PUSH_URL,
            "PUSH_APPLICATION": fake.application,
            "PUSH_AUTH_KEY": fake.auth,
        },
    )


def fake_todos(api=None, url=FAKE_TODOS_URL):
    """Point the todo client at a fresh fake todo API; yields it."""
    return _MountedFake(api or todo_api, url, lambda fake: {"TODOS_API_URL": url})


class FakeNotificationServicesMixin:
    """For TestCase classes: `self.push` and `self.todo_api`, fresh for every test."""

    def setUp(self):
        super().setUp()
        self.push = self.enterContext(fake_push())
        self.todo_api = self.enterContext(fake_todos())


def _shared(fake, store, name):
    from backend.sandbox_store import SharedFake

    return SharedFake(fake, store, name) if store is not None else fake


def install_sandbox_push(store=None):
    """Sandbox mode: the push client talks to the fake for good (`store`: shared state)."""
    push_provider.application = settings.PUSH_APPLICATION
    push_provider.auth = settings.PUSH_AUTH_KEY
    fake = _shared(push_provider, store, "push")
    session.mount(settings.PUSH_API_URL, RequestsAdapter(fake, settings.PUSH_API_URL))
    _installed.add("push")


def install_sandbox_todos(store=None):
    """Sandbox mode: the fake todo API answers at settings.TODOS_API_URL (the public URL)."""
    fake = _shared(todo_api, store, "todos")
    session.mount(todos.base_url(), RequestsAdapter(fake, todos.base_url()))
    _installed.add("todos")


def installed():
    return sorted(_installed)
