"""A client for the push provider's HTTP API (Pushwoosh Remote API, JSON 1.3)."""

import logging

import requests
from django.conf import settings

from notifications.http import session

logger = logging.getLogger(__name__)

DEVICE_TYPES = {"ios": 1, "android": 3}


class PushError(Exception):
    """The provider did not accept the request."""

    retryable = False


class PushArgumentError(PushError):
    """HTTP 200 with status_code 210: the provider rejected an argument."""


class PushConfigurationError(PushError):
    """401/403: our application code or auth key is wrong. Retrying will not help."""


class PushUnavailable(PushError):
    """Timeouts, connection failures, 429 and 5xx: worth retrying later."""

    retryable = True


class PushService:
    def __init__(self, api_url=None, application=None, auth=None):
        self.api_url = api_url or settings.PUSH_API_URL
        self.application = settings.PUSH_APPLICATION if application is None else application
        self.auth = settings.PUSH_AUTH_KEY if auth is None else auth

    def create_message(self, notifications):
        """Send [{'text': ..., 'conditions': [tag, op, value]}, ...]; returns the message codes."""
        codes = []
        size = max(1, settings.PUSH_BATCH_SIZE)
        for start in range(0, len(notifications), size):
            batch = notifications[start : start + size]
            payload = [
                {"send_date": "now", "content": n["text"], "conditions": [list(n["conditions"])]}
                for n in batch
            ]
            response = self.call("createMessage", {"notifications": payload})
            codes.extend((response or {}).get("Messages") or [])
        return codes

    def register_device(self, hwid, push_token, platform, user_id):
        return self.call(
            "registerDevice",
            {
                "push_token": push_token,
                "hwid": hwid,
                "device_type": DEVICE_TYPES[platform],
                "userId": str(user_id),
            },
        )

    def unregister_device(self, hwid):
        """Remove the device's push token at the provider (Device API `unregisterDevice`:
        `application` and the `hwid` used in registerDevice; docs.pushwoosh.com, Device API)."""
        return self.call("unregisterDevice", {"hwid": hwid})

    def delete_message(self, message_code):
        return self.call("deleteMessage", {"message": message_code})

    def call(self, method, request):
        url = self.api_url + method
        body = {"request": {"application": self.application, "auth": self.auth, **request}}
        try:
            response = session.post(url, json=body, timeout=settings.PUSH_TIMEOUT_SECONDS)
        except requests.Timeout as error:
            raise PushUnavailable(f"{method}: the push provider timed out") from error
        except requests.RequestException as error:
            raise PushUnavailable(f"{method}: cannot reach the push provider ({error})") from error
        if response.status_code in (401, 403):
            raise PushConfigurationError(
                f"{method}: the push provider refused our credentials (HTTP {response.status_code}); "
                "check PUSH_APPLICATION and PUSH_AUTH_KEY"
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise PushUnavailable(
                f"{method}: the push provider answered HTTP {response.status_code}"
            )
        try:
            answer = response.json()
        except ValueError as error:
            raise PushUnavailable(f"{method}: the push provider answered with non-JSON") from error
        if response.status_code != 200 or not isinstance(answer, dict):
            raise PushError(f"{method}: unexpected answer HTTP {response.status_code}")
        if answer.get("status_code") != 200:
            raise PushArgumentError(
                f"{method}: {answer.get('status_message') or 'argument error'} "
                f"(status_code {answer.get('status_code')})"
            )
        return answer.get("response")
