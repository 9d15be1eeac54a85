"""The push and todo fakes wired into this backend's settings and HTTP session.

The fakes themselves are fakes.pushwoosh.FakePushProvider (the Pushwoosh Remote API)
and fakes.todos.FakeTodoApi (JSONPlaceholder), re-exported here. `fake_push()` /
`fake_todos()` mount one on notifications.http.session (a transport adapter, no socket)
and point the settings (PUSH_*, TODOS_API_URL) at it; the sandbox service (fakes.service,
`manage.py fakeservices`) serves them over HTTP.
`FakePushProvider.outbox` is what users would have received, like mail.outbox.
"""

import contextlib

from django.test import override_settings

from fakes.pushwoosh import (
    FAKE_APPLICATION,
    FAKE_AUTH,
    FAKE_PUSH_URL,
    TRANSACTION_ID_WINDOW_SECONDS,
    FakePushProvider,
)
from fakes.todos import FAKE_TODOS_URL, FakeTodoApi, seed_todos, seed_users
from fakes.transport import mounted
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
    "push_provider",
    "seed_todos",
    "seed_users",
    "todo_api",
]

push_provider = FakePushProvider()
todo_api = FakeTodoApi()


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
