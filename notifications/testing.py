"""Fakes for the push provider (Pushwoosh Remote API) and the todo API (JSONPlaceholder).

Each is a `handle(method, path, query, body, headers)` object (fakes.contract), so
it runs in process through `fake_push()` / `fake_todos()` (a transport adapter
on notifications.http.session, no socket) or over HTTP under `fakeservices`.
`FakePushProvider.outbox` is what users would have received, like mail.outbox.
"""

import contextlib
import json
import re
import secrets
import threading
import time
from collections import Counter
from urllib.parse import parse_qs

from django.conf import settings
from django.test import override_settings

from fakes.contract import FakeResponse, FaultPlan, TransportFault
from fakes.transport import RequestsAdapter, mounted
from notifications import todos
from notifications.http import session

FAKE_APPLICATION = "FAKE0-00000"
FAKE_AUTH = "fake-push-auth-key"
FAKE_PUSH_URL = "https://push.fake.invalid/json/1.3/"


def _error_on_method_or_path(method, path, routes):
    if path not in routes:
        return FakeResponse.json(404, {"status_code": 404, "status_message": f"Not found: {path}"})
    if method != routes[path]:
        return FakeResponse.json(
            405, {"status_code": 405, "status_message": f"{method} not allowed"}
        )
    return None


# Pushwoosh's createMessage takes an optional per-notification `transactionId`, a unique
# message identifier that prevents duplicates when a request is repeated after network
# problems; Pushwoosh keeps it for 5 minutes
# (https://docs.pushwoosh.com/developer/api-reference/messages-api/, createMessage).
TRANSACTION_ID_WINDOW_SECONDS = 5 * 60


class FakePushProvider:
    """Stateful Pushwoosh: message codes, 210 argument errors, auth failures, an outbox.

    A notification whose transactionId was seen in the last 5 minutes is accepted and
    answered with the first one's message code, but not delivered again (`duplicates`
    lists them); after the window the key is forgotten, as Pushwoosh forgets it.
    `clock` (seconds) can be replaced to move time; `latency` delays every answer
    (after the request is performed); `on_request(path, request)` runs before answering.
    """

    ROUTES = {
        "/createMessage": "POST",
        "/registerDevice": "POST",
        "/unregisterDevice": "POST",
        "/deleteMessage": "POST",
    }

    def __init__(self, application=FAKE_APPLICATION, auth=FAKE_AUTH):
        self.application, self.auth = application, auth
        self.faults = FaultPlan()
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        # Wall-clock seconds: the sandbox shares this fake's state between processes and
        # across restarts, where a monotonic clock means nothing. Tests may replace it.
        self.clock = time.time
        self.outbox = []  # every notification delivered: {"code", "content", "conditions", ...}
        self.devices = {}  # hwid -> registration
        self.unregistered = []  # hwids removed by unregisterDevice, in order
        self.deleted = []
        self.requests = []
        self.transactions = {}  # transactionId -> (message code, when first accepted)
        self.duplicates = []  # transactionIds answered within the window, not delivered again
        self.latency = 0.0
        self.slow_response_delay = 1.0  # over HTTP: how late a slow_response answer comes
        self.on_request = None
        self.faults.clear()

    @staticmethod
    def _argument_error(message):
        return FakeResponse.json(
            200, {"status_code": 210, "status_message": message, "response": None}
        )

    def handle(self, method, path, query, body, headers):
        refused = _error_on_method_or_path(method.upper(), path, self.ROUTES)
        if refused:
            return refused
        fault = self.faults.before_request(method, path)
        if fault == "api_error":
            return FakeResponse.json(500, {"status_code": 500, "status_message": "Internal error"})
        if fault == "rate_limit":
            return FakeResponse.json(
                429, {"status_code": 429, "status_message": "Too many requests"}
            )
        try:
            request = json.loads(body or b"null")["request"]
        except (ValueError, TypeError, KeyError):
            request = None
        if not isinstance(request, dict):
            return FakeResponse.json(
                400, {"status_code": 400, "status_message": "Invalid JSON request"}
            )
        with self._lock:
            self.requests.append((path, request))
            if request.get("auth") != self.auth:
                return FakeResponse.json(
                    401, {"status_code": 401, "status_message": "Access denied"}
                )
            if request.get("application") != self.application:
                return self._argument_error("Application not found")
            answer = getattr(self, path.strip("/"))(request)
        if self.on_request:
            self.on_request(path, request)
        if self.latency:
            time.sleep(self.latency)
        if fault == "lost_response":
            raise TransportFault(fault)  # performed (messages sent), but the answer is lost
        if fault == "slow_response":  # performed; the answer comes after the client's timeout
            raise TransportFault(fault, answer=answer, delay=self.slow_response_delay)
        return answer

    def createMessage(self, request):
        notifications = request.get("notifications")
        if not isinstance(notifications, list) or not notifications:
            return self._argument_error("Invalid notifications: a non-empty list is required")
        accepted = []
        for notification in notifications:
            content = notification.get("content") if isinstance(notification, dict) else None
            if not content:
                return self._argument_error("Invalid notification: content is required")
            conditions = notification.get("conditions", [])
            if not isinstance(conditions, list) or not all(
                isinstance(c, list) and len(c) == 3 and c[1] in ("EQ", "IN", "NOTEQ", "LTE", "GTE")
                for c in conditions
            ):
                return self._argument_error("Invalid conditions: each is [tag, operator, value]")
            transaction_id = notification.get("transactionId")
            if transaction_id is not None and (
                not isinstance(transaction_id, str) or not transaction_id
            ):
                return self._argument_error("Invalid transactionId: a non-empty string is required")
            accepted.append(notification)
        codes = []
        now = self.clock()
        for notification in accepted:
            transaction_id = notification.get("transactionId")
            seen = self.transactions.get(transaction_id) if transaction_id else None
            if seen and now - seen[1] < TRANSACTION_ID_WINDOW_SECONDS:
                codes.append(seen[0])  # a repeat: answered as the first, not delivered again
                self.duplicates.append(transaction_id)
                continue
            code = f"{secrets.token_hex(4).upper()}-{secrets.token_hex(4).upper()}"
            codes.append(code)
            if transaction_id:
                self.transactions[transaction_id] = (code, now)
            self.outbox.append(
                {
                    "code": code,
                    "content": notification["content"],
                    "conditions": notification.get("conditions", []),
                    "send_date": notification.get("send_date", "now"),
                    "transactionId": transaction_id,
                }
            )
        return FakeResponse.json(
            200, {"status_code": 200, "status_message": "OK", "response": {"Messages": codes}}
        )

    def registerDevice(self, request):
        for name in ("push_token", "hwid", "device_type"):
            if not request.get(name):
                return self._argument_error(f"Invalid argument: {name} is required")
        if request["device_type"] not in (1, 3):
            return self._argument_error("Invalid device type")
        self.devices[request["hwid"]] = {
            k: request.get(k) for k in ("push_token", "device_type", "userId")
        }
        return FakeResponse.json(
            200, {"status_code": 200, "status_message": "OK", "response": None}
        )

    def unregisterDevice(self, request):
        # Device API: {"application", "hwid"}; 200/200 when unsubscribed, 200/210 argument error.
        # The docs do not say what an unknown hwid gets: the fake answers 210, and
        # accounts.services treats that as already unregistered (as it would a 200).
        hwid = request.get("hwid")
        if not hwid:
            return self._argument_error("Invalid argument: hwid is required")
        if hwid not in self.devices:
            return self._argument_error("Device not found")
        del self.devices[hwid]
        self.unregistered.append(hwid)
        return FakeResponse.json(
            200, {"status_code": 200, "status_message": "OK", "response": None}
        )

    def deleteMessage(self, request):
        code = request.get("message")
        if code not in {m["code"] for m in self.outbox} or code in self.deleted:
            return self._argument_error("Message not found")
        self.deleted.append(code)
        return FakeResponse.json(
            200, {"status_code": 200, "status_message": "OK", "response": None}
        )

    def received_by(self, user_id):
        """The texts a user would have received (conditions UserID EQ user_id)."""
        return [m["content"] for m in self.outbox if ["UserID", "EQ", user_id] in m["conditions"]]

    def deliveries_per_user(self):
        """{user id: number of pushes delivered} for UserID EQ conditions (one pass)."""
        counts = Counter()
        for message in self.outbox:
            for condition in message["conditions"]:
                if condition[:2] == ["UserID", "EQ"]:
                    counts[condition[2]] += 1
        return counts


def seed_users():
    names = ["Leanne Graham", "Ervin Howell", "Clementine Bauch", "Patricia Lebsack",
             "Chelsey Dietrich", "Dennis Schulist", "Kurtis Weissnat", "Nicholas Runolfsdottir",
             "Glenna Reichert", "Clementina DuBuque"]  # fmt: skip
    users = []
    for index, name in enumerate(names, start=1):
        username = name.split()[0].lower()
        users.append(
            {
                "id": index,
                "name": name,
                "username": username,
                "email": f"{username}@example.com",
                "address": {"street": "Kulas Light", "suite": f"Apt. {index}", "city": "Gwenborough",
                            "zipcode": "92998-3874", "geo": {"lat": "-37.3159", "lng": "81.1496"}},
                "phone": f"1-770-736-80{index:02d}",
                "website": f"{username}.example.org",
                "company": {"name": f"Company {index}", "catchPhrase": "Multi-layered client-server",
                            "bs": "harness real-time e-markets"},
            }
        )  # fmt: skip
    return users


def seed_todos():
    """200 todos, 20 per user, in JSONPlaceholder's shape; roughly half completed."""
    return [
        {"userId": (i - 1) // 20 + 1, "id": i, "title": f"todo number {i}", "completed": i % 3 == 0}
        for i in range(1, 201)
    ]


class FakeTodoApi:
    """JSONPlaceholder's /todos and /users, read-only, with seeded data."""

    def __init__(self):
        self.faults = FaultPlan()
        self.reset()

    def reset(self):
        self.todos = seed_todos()
        self.users = seed_users()
        self.faults.clear()

    def handle(self, method, path, query, body, headers):
        match = re.fullmatch(r"/(todos|users)(?:/(\d+))?/?", path)
        if not match:
            return FakeResponse.json(404, {})
        if method.upper() != "GET":
            return FakeResponse.json(405, {"error": f"{method} not allowed"}, {"Allow": "GET"})
        fault = self.faults.before_request(method, path)
        if fault == "lost_response":
            raise TransportFault(fault)
        if fault:
            return FakeResponse.json(500 if fault == "api_error" else 429, {})
        items = self.todos if match.group(1) == "todos" else self.users
        if match.group(2):
            found = [item for item in items if item["id"] == int(match.group(2))]
            return FakeResponse.json(200, found[0]) if found else FakeResponse.json(404, {})
        filters = {k: v[0] for k, v in parse_qs(query).items()}
        if "userId" in filters and match.group(1) == "todos":
            items = [t for t in items if str(t["userId"]) == filters["userId"]]
        return FakeResponse.json(200, items, {"Content-Type": "application/json; charset=utf-8"})


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


def fake_todos(api=None, url="https://todos.fake.invalid/"):
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
