"""The control API: JSON under /control, for commands, tests and the console.

Like WireMock's /__admin and Mockoon's admin API, it steers the service for every
client at once (docs/sandbox.md lists every route). Bodies are JSON objects; every
refusal is `{"error": {"type", "code", "message", "param"}}` with a 4xx status, and a
refused call changes nothing. Each call runs under the service's lock, as one
transaction, so no sequence of calls can leave the state half-changed.
"""

import base64
import binascii
import hmac
import json
import re

from fakes.contract import FakeResponse
from fakes.service.service import SERVICES, ControlError
from fakes.service.triggers import TRIGGERS

DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_ADVANCE = 366 * 86400
MAX_BODY = 64 * 1024  # bytes: the largest control call (a webhook endpoint) is tiny


def parse_duration(text):
    """Seconds in '90', '90s', '15m', '2h', '7d', '1h30m'; ValueError otherwise."""
    if isinstance(text, bool):
        raise ValueError("a duration")
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        text = str(text).strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = DURATION.findall(text)
            if not parts or "".join(number + unit for number, unit in parts) != text:
                raise ValueError(f"not a duration: {text!r} (e.g. 90s, 15m, 2h, 7d, 1h30m)")
            seconds = sum(float(number) * UNITS[unit] for number, unit in parts)
    if not 0 < seconds <= MAX_ADVANCE:
        raise ValueError("a duration above 0 and at most 366 days")
    return seconds


def error(status, code, message, param=None):
    body = {"type": "invalid_request_error", "code": code, "message": message, "param": param}
    return FakeResponse.json(status, {"error": body})


def ok(payload, status=200):
    return FakeResponse.json(status, payload)


def authorized(headers, password):
    """Basic (any user name) or Bearer with the console password."""
    if not password:
        return True
    header = (headers.get("Authorization") or "").strip()
    given = ""
    if header[:6].lower() == "basic ":
        try:
            given = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            given = ""
    elif header[:7].lower() == "bearer ":
        given = header[7:].strip()
    return hmac.compare_digest(given.encode(), password.encode())


def refuse_unauthorized():
    answer = error(401, "authentication_required", "This sandbox asks for its console password.")
    answer.headers["WWW-Authenticate"] = 'Basic realm="sandbox console"'
    return answer


class ControlApi:
    """handle() for /control (fakes.contract)."""

    def __init__(self, service):
        self.service = service
        self.routes = [
            ("GET", r"/status", self.status),
            ("GET", r"/version", self.version),
            ("POST", r"/reset", self.reset),
            ("GET", r"/faults", self.faults),
            ("POST", r"/faults", self.add_fault),
            ("DELETE", r"/faults", self.clear_faults),
            ("POST", r"/faults/clear", self.clear_faults),
            ("GET", r"/clock", self.clock),
            ("POST", r"/clock/advance", self.advance),
            ("GET", r"/triggers", self.triggers),
            ("POST", r"/trigger", self.trigger),
            ("GET", r"/events", self.events),
            ("GET", r"/events/(?P<event>[^/]+)", self.event),
            ("POST", r"/events/(?P<event>[^/]+)/redeliver", self.redeliver),
            ("GET", r"/webhook", self.webhook),
            ("POST", r"/webhook/retry-pending", self.retry_pending),
            ("POST", r"/webhook", self.set_webhook),
            ("GET", r"/stripe/objects", self.objects),
            ("GET", r"/stripe/objects/(?P<id>[^/]+)", self.stripe_object),
            ("GET", r"/calls", self.calls),
            ("POST", r"/stripe/settle-refunds", self.settle_refunds),
            ("POST", r"/3ds/(?P<intent>[^/]+)", self.three_d_secure),
            ("GET", r"/push/devices", self.devices),
            ("GET", r"/push/outbox", self.outbox),
            ("GET", r"/todos", self.todos),
            ("PUT", r"/todos", self.replace_todos),
            ("PATCH", r"/todos/(?P<id>\d+)", self.update_todo),
        ]

    def handle(self, method, path, query, body, headers):
        if not authorized(headers, self.service.console_password):
            return refuse_unauthorized()
        method = method.upper()
        path = "/" + path.strip("/")
        allowed = []
        for route_method, pattern, view in self.routes:
            match = re.fullmatch(pattern, path)
            if not match:
                continue
            if route_method != method:
                allowed.append(route_method)
                continue
            try:
                data = self._body(method, body, headers)
                params = _query(query)
                return view(data=data, params=params, **match.groupdict())
            except ControlError as refused:
                return error(refused.status, refused.code, refused.message, refused.param)
        if allowed:
            answer = error(405, "method_not_allowed", f"{path} takes {', '.join(allowed)}.")
            answer.headers["Allow"] = ", ".join(allowed)
            return answer
        return error(
            404, "not_found", f"No control route {method} /control{path}; see docs/sandbox.md."
        )

    @staticmethod
    def _body(method, body, headers):
        if method in ("GET", "DELETE") or not body:
            return {}
        if len(body) > MAX_BODY:
            raise ControlError(
                413, "payload_too_large", f"A control call's body is at most {MAX_BODY} bytes."
            )
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            # A browser's cross-site form cannot send JSON without asking first (CORS): the
            # console's buttons use fetch() with this type, so no form can steer the sandbox.
            raise ControlError(
                415, "unsupported_media_type", "Send a JSON body (application/json)."
            )
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):  # (nested thousands deep)
            raise ControlError(400, "parse_error", "The body is not JSON.") from None
        if not isinstance(data, dict | list):
            raise ControlError(400, "parse_error", "The body is a JSON object.")
        return data

    # ------------------------------------------------------------------ views
    def status(self, **_):
        return ok(self.service.status())

    def version(self, **_):
        return ok({"version": self.service.version})

    def reset(self, **_):
        self.service.reset()
        return ok(self.service.status())

    def faults(self, **_):
        return ok({"object": "list", "data": self.service.faults()})

    def add_fault(self, data, **_):
        data = _object(data)
        times = _integer(data, "times", 1, 1, 10_000)
        after = _integer(data, "after", 0, 0, 1_000_000)
        delay = data.get("delay")
        if delay is not None and (
            isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 < delay <= 600
        ):
            raise ControlError(
                400, "invalid_delay", "delay is seconds, above 0 and at most 600.", "delay"
            )
        for name in ("service", "method", "path", "kind"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise ControlError(
                    400, "parameter_missing", f"{name} is required (a string).", name
                )
        faults = self.service.add_fault(
            data["service"], data["method"], data["path"], data["kind"], times, after, delay
        )
        return ok({"object": "list", "data": faults}, 201)

    def clear_faults(self, data=None, params=None, **_):
        service = (params or {}).get("service")
        if service is None and isinstance(data, dict):
            service = data.get("service")
        if service is not None and service not in SERVICES:
            raise ControlError(
                400, "invalid_service", f"Service is one of {', '.join(SERVICES)}.", "service"
            )
        return ok({"object": "list", "data": self.service.clear_faults(service)})

    def clock(self, **_):
        return ok(self.service.clock_json())

    def advance(self, data, **_):
        data = _object(data)
        given = data.get("duration", data.get("seconds"))
        if given is None:
            raise ControlError(
                400, "parameter_missing", 'Give duration (e.g. "2h") or seconds.', "duration"
            )
        try:
            seconds = parse_duration(given)
        except ValueError as refused:
            param = "duration" if "duration" in data else "seconds"  # (the one given)
            raise ControlError(400, "invalid_duration", str(refused), param) from None
        return ok(self.service.advance_clock(seconds))

    def triggers(self, **_):
        return ok({"object": "list", "data": sorted(TRIGGERS)})

    def trigger(self, data, **_):
        data = _object(data)
        event = data.get("event")
        if not isinstance(event, str) or not event:
            raise ControlError(
                400, "parameter_missing", "event is required, e.g. charge.refunded.", "event"
            )
        return ok(self.service.trigger(event), 201)

    def events(self, params, **_):
        limit = _integer(params, "limit", 50, 1, 1000)
        since = _integer(params, "since", 0, 0, 10**12)
        full = params.get("full") in ("1", "true")
        events = self.service.events(limit, params.get("type"), since, full)
        return ok({"object": "list", "data": events})

    def event(self, event, **_):
        found = self.service.event_json(event)
        if found is None:
            raise ControlError(404, "resource_missing", f"No such event: {event!r}", "event")
        return ok(found)

    def redeliver(self, event, **_):
        record = self.service.redeliver(event)
        return ok(record.as_json(), 202)

    def retry_pending(self, **_):
        return ok({"retried": self.service.retry_pending_deliveries()})

    def webhook(self, **_):
        endpoint = self.service.endpoint
        return ok(
            {
                "object": "webhook_endpoint",
                **endpoint,
                "retry_delays": list(self.service.deliveries.retry_delays),
            }
        )

    def set_webhook(self, data, **_):
        data = _object(data)
        url = data.get("url")
        if url is not None and not (
            isinstance(url, str) and (url == "" or re.match(r"https?://", url))
        ):
            raise ControlError(400, "invalid_url", 'url is an http(s) URL, or "" for none.', "url")
        secret = data.get("secret")
        if secret is not None and not (isinstance(secret, str) and secret.startswith("whsec_")):
            raise ControlError(400, "invalid_secret", "secret starts with whsec_.", "secret")
        events = data.get("enabled_events")
        if events is not None and not (
            isinstance(events, list) and all(isinstance(e, str) for e in events)
        ):
            raise ControlError(
                400, "invalid_events", "enabled_events is a list of event types.", "enabled_events"
            )
        self.service.set_endpoint(url, secret, events)
        return self.webhook()

    def objects(self, params, **_):
        limit = _integer(params, "limit", 50, 1, 1000)
        object_type = params.get("type") or None
        if object_type is not None and not re.fullmatch(r"[a-z_.]+", object_type):
            raise ControlError(
                400, "invalid_type", "type is a Stripe object name, e.g. charge.", "type"
            )
        found = self.service.objects(object_type, params.get("q"), limit)
        return ok({"object": "list", "data": found})

    def stripe_object(self, id, **_):
        found = self.service.objects(None, id, 1)
        if not found or found[0].get("id") != id:
            raise ControlError(404, "resource_missing", f"No such object: {id!r}", "id")
        return ok(found[0])

    def calls(self, params, **_):
        since = _integer(params, "since", 0, 0, 10**12)
        service = params.get("service")
        calls = self.service.calls_since(since, service)
        return ok(
            {
                "object": "list",
                "total": self.service.calls_total,
                "data": [
                    {"number": n, "service": s, "method": m, "path": p, "outcome": o}
                    for n, s, m, p, o in calls
                ],
            }
        )

    def settle_refunds(self, **_):
        return ok({"object": "list", "data": self.service.settle_refunds()})

    def three_d_secure(self, data, intent, **_):
        data = _object(data)
        result = data.get("result")
        if result not in ("succeed", "fail"):
            raise ControlError(
                400,
                "validation_error",
                "Answer the challenge: result is succeed or fail.",
                "result",
            )
        settled = self.service.authenticate(intent, result == "succeed")
        return ok({"id": settled["id"], "object": settled["object"], "status": settled["status"]})

    def devices(self, **_):
        with self.service.lock:
            devices = [
                {"hwid": hwid, **dict(device)}
                for hwid, device in dict.items(self.service.push.devices)
            ]
        return ok({"object": "list", "data": devices})

    def outbox(self, params, **_):
        limit = _integer(params, "limit", 100, 1, 10_000)
        user, device = params.get("user"), params.get("device")
        with self.service.lock:
            push = self.service.push
            messages = list(reversed(push.outbox))
            if device:
                registration = dict.get(push.devices, device)
                user = user or (registration or {}).get("userId")
                if user is None:
                    messages = []
            if user is not None:
                messages = [m for m in messages if _addressed_to(m, user)]
            return ok({"object": "list", "data": messages[:limit]})

    def todos(self, params, **_):
        with self.service.lock:
            todos = list(self.service.todos.todos)
        if params.get("userId"):
            todos = [t for t in todos if str(t.get("userId")) == params["userId"]]
        return ok({"object": "list", "data": todos})

    def replace_todos(self, data, **_):
        todos = data.get("data") if isinstance(data, dict) else data
        if not isinstance(todos, list) or not all(_is_todo(t) for t in todos):
            raise ControlError(
                400, "invalid_todos",
                "A list of todos: {userId: int, id: int, title: str, completed: bool}.", "data",
            )  # fmt: skip
        self.service.replace_todos(todos)
        return ok({"object": "list", "data": todos})

    def update_todo(self, data, id, **_):
        data = _object(data)
        completed = data.get("completed")
        if not isinstance(completed, bool):
            raise ControlError(400, "invalid_completed", "completed is true or false.", "completed")
        with self.service.lock:
            todos = [dict(t) for t in self.service.todos.todos]
            found = [t for t in todos if t["id"] == int(id)]
            if not found:
                raise ControlError(404, "resource_missing", f"No todo {id}.", "id")
            found[0]["completed"] = completed
            self.service.replace_todos(todos)
        return ok(found[0])


def _addressed_to(message, user):
    return any(
        condition[:2] == ["UserID", "EQ"] and str(condition[2]) == str(user)
        for condition in message.get("conditions") or []
    )


def _is_todo(todo):
    return (
        isinstance(todo, dict)
        and isinstance(todo.get("id"), int)
        and isinstance(todo.get("userId"), int)
        and isinstance(todo.get("title"), str)
        and isinstance(todo.get("completed"), bool)
        and not isinstance(todo["id"], bool)
        and not isinstance(todo["userId"], bool)
    )


def _object(data):
    if not isinstance(data, dict):
        raise ControlError(400, "parse_error", "The body is a JSON object.")
    return data


def _integer(source, name, default, low, high):
    value = source.get(name, default)
    if isinstance(value, str):
        if not re.fullmatch(r"\d{1,13}", value):
            raise ControlError(400, "invalid_integer", f"{name} is a whole number.", name)
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ControlError(
            400, "invalid_integer", f"{name} is a whole number from {low} to {high}.", name
        )
    return value


def _query(query):
    from urllib.parse import parse_qsl

    return dict(parse_qsl(query or "", keep_blank_values=True))
