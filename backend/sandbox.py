"""Sandbox mode, the Django side: the backend on the sandbox service, as production on Stripe.

The service (fakes.service: the fake Stripe, push provider and todo API in one process,
with their durable state, webhooks, control API and console) is provider-side and knows
nothing of Django. This backend reaches it as it reaches the real providers: settings.py
points each provider left without credentials (DEBUG on) at SANDBOX_URL with test keys,
and the ordinary client code runs. What lives here is the little the commands need:

- `client()`: the service's control API (`manage.py sandbox status|reset|fault|clock|...`);
- `backend_environment()`: what a backend process started by `sandbox serve` is given.

docs/sandbox.md is the guide.
"""

import json

import requests
from django.conf import settings

# settings.py wires these when DEBUG is on and a provider has no credentials.
SANDBOX_STRIPE_KEY = "sk_test_sandbox"


class SandboxUnavailable(Exception):
    """The sandbox service did not answer, or refused a control call (message says why)."""

    def __init__(self, message, status=None, body=None):
        super().__init__(message)
        self.status, self.body = status, body


class ControlClient:
    """The service's control API over HTTP (JSON in, JSON out)."""

    def __init__(self, url=None, password=None, timeout=30):
        self.url = (url or settings.SANDBOX_URL).rstrip("/")
        self.password = settings.SANDBOX_CONSOLE_PASSWORD if password is None else password
        self.timeout = timeout
        self.http = requests.Session()  # our own: never the provider session fakes mount on
        if self.password:
            self.http.headers["Authorization"] = f"Bearer {self.password}"

    def call(self, method, path, body=None, params=None):
        url = f"{self.url}/control/{path.lstrip('/')}"
        try:
            answer = self.http.request(method, url, json=body, params=params, timeout=self.timeout)
        except requests.RequestException as error:
            raise SandboxUnavailable(
                f"The sandbox service does not answer at {self.url} ({type(error).__name__}). "
                "Start it with `python manage.py fakeservices` (or `sandbox serve`), or set "
                "SANDBOX_URL to where it runs."
            ) from error
        try:
            payload = answer.json()
        except ValueError:
            raise SandboxUnavailable(
                f"{url} answered {answer.status_code} without JSON: is SANDBOX_URL the sandbox "
                "service?",
                answer.status_code,
            ) from None
        if answer.status_code >= 400:
            error = payload.get("error", {}) if isinstance(payload, dict) else {}
            raise SandboxUnavailable(
                error.get("message") or f"{url} answered {answer.status_code}",
                answer.status_code,
                payload,
            )
        return payload

    def get(self, path, **params):
        return self.call("GET", path, params=params or None)

    def post(self, path, body=None):
        return self.call("POST", path, body if body is not None else {})

    def close(self):
        self.http.close()


def client(url=None, password=None):
    return ControlClient(url, password)


def backend_environment(service_url, webhook_secret, base=None):
    """The environment of a backend process started next to a service at `service_url`
    (from `base`, os.environ by default): no provider credentials, so sandbox mode's
    settings find every provider there; its webhooks arrive signed with this secret."""
    import os

    environment = dict(os.environ if base is None else base)
    for name in list(environment):
        if name.startswith(("STRIPE_", "PUSH_", "TODOS_")):
            del environment[name]
    environment.update(
        DEBUG="true",
        SANDBOX_URL=service_url,
        STRIPE_WEBHOOK_SECRET=webhook_secret,
    )
    return environment


def pretty(payload):
    return json.dumps(payload, indent=2, sort_keys=False)
