"""A stateful fake of the Pushwoosh Remote API (JSON, /json/1.3/): messages, devices, an outbox.

`FakePushProvider` keeps the `handle(method, path, query, body, headers)` contract
(fakes.contract): mount it under a base URL such as FAKE_PUSH_URL on a requests session
(fakes.transport.mounted) or serve it (fakes.server.FakeServer). `outbox` is what users
would have received, like Django's mail.outbox.
"""

import json
import secrets
import threading
import time
from collections import Counter

from fakes.contract import FakeResponse, FaultPlan, TransportFault

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
        # Wall-clock seconds: a sandbox may share this fake's state between processes and
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
        except (ValueError, TypeError, KeyError, RecursionError):
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
        # a client may treat that as already unregistered (as it would a 200).
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
