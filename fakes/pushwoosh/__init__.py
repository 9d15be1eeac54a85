"""The fake Pushwoosh: `FakePushProvider`, answering the Remote API as Pushwoosh documents it."""

from fakes.pushwoosh.provider import (
    FAKE_APPLICATION,
    FAKE_AUTH,
    FAKE_PUSH_URL,
    TRANSACTION_ID_WINDOW_SECONDS,
    FakePushProvider,
)

__all__ = [
    "FAKE_APPLICATION",
    "FAKE_AUTH",
    "FAKE_PUSH_URL",
    "TRANSACTION_ID_WINDOW_SECONDS",
    "FakePushProvider",
]
