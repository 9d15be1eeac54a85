"""The console: what the sandbox holds, in a browser, updated live as the app works.

Server-rendered HTML (string.Template and html.escape: the service imports no template
engine) and one small script of vanilla JS served from this package (static/), so it
works offline with no build step. The script polls /control/version once a second and,
when the state changed, fetches the page again and swaps its <main> (unless a form in
it has the focus); its buttons call the control API with JSON bodies. Pages:

    /console/                 overview: counts, the clock, fault switches, triggers, reset
    /console/stripe?q=...     customers (with their saved cards), PaymentIntents, charges,
                              refunds: newest first, searched by id or email
    /console/stripe/<id>      one object as the API answers it
    /console/events           events with their webhook deliveries, and Redeliver
    /console/events/<id>      one event, every delivery attempt
    /console/push             each device, and the notifications its user received
    /console/todos            the todo API's todos (tick one to change what it answers)
"""

import html
import json
import time
from pathlib import Path
from string import Template
from urllib.parse import parse_qsl, urlencode

from fakes.contract import FakeResponse
from fakes.service.control import authorized, refuse_unauthorized
from fakes.service.service import FAULT_NAMES, SERVICES
from fakes.service.triggers import TRIGGERS

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

LAYOUT = Template("""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>$title · Sandbox console</title>
  <link rel="stylesheet" href="/console/static/console.css">
  <script src="/console/static/console.js" defer></script>
</head>
<body data-version="$version">
<header>
  <strong>Sandbox</strong>
  <nav>$nav</nav>
  <form class="search" action="/console/stripe" method="get">
    <input name="q" placeholder="Search id or email" value="$query" aria-label="Search Stripe objects">
  </form>
  <span id="live" title="Updates as the app works">live</span>
</header>
<main id="main">
$main
</main>
<footer>Stripe, push and todo fakes on one service · state: $state · <a href="/control/status">JSON</a></footer>
</body>
</html>
""")

NAV = (
    ("/console/", "Overview"),
    ("/console/stripe", "Stripe"),
    ("/console/events", "Events"),
    ("/console/push", "Push"),
    ("/console/todos", "Todos"),
)


def h(value):
    return html.escape("" if value is None else str(value))


def when(timestamp):
    if not timestamp:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def money(obj):
    amount, currency = obj.get("amount"), obj.get("currency")
    if amount is None or not currency:
        return ""
    return (
        f"{amount / 100:.2f} {currency.upper()}"
        if currency not in ("jpy", "krw")
        else f"{amount} {currency.upper()}"
    )


def button(label, url, body=None, confirm=None, css="", method="POST"):
    attributes = f'data-post="{h(url)}" data-method="{h(method)}"'
    if body is not None:
        attributes += f" data-body='{h(json.dumps(body))}'"
    if confirm:
        attributes += f' data-confirm="{h(confirm)}"'
    return f'<button type="button" class="{h(css)}" {attributes}>{h(label)}</button>'


def table(headers, rows, empty="Nothing yet."):
    if not rows:
        return f'<p class="empty">{h(empty)}</p>'
    head = "".join(f"<th>{h(title)}</th>" for title in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def link(url, text):
    return f'<a href="{h(url)}">{h(text)}</a>'


def status_badge(status):
    return f'<span class="badge {h(status)}">{h(status)}</span>'


class Console:
    """handle() for /console."""

    def __init__(self, service):
        self.service = service

    def handle(self, method, path, query, body, headers):
        if not authorized(headers, self.service.console_password):
            return refuse_unauthorized()
        if path.startswith("/static/"):
            return self.static(path[len("/static/") :])
        if method.upper() != "GET":
            return FakeResponse(405, b"GET only", {"Allow": "GET", "Content-Type": "text/plain"})
        params = dict(parse_qsl(query or "", keep_blank_values=True))
        path = "/" + path.strip("/")
        pages = {
            "/": ("Overview", self.overview),
            "/stripe": ("Stripe", self.stripe),
            "/events": ("Events", self.events),
            "/push": ("Push", self.push),
            "/todos": ("Todos", self.todos),
        }
        if path in pages:
            title, view = pages[path]
            main, status = view(params), 200
        elif path.startswith("/stripe/"):
            title, (main, status) = "Stripe object", self.stripe_object(path[len("/stripe/") :])
        elif path.startswith("/events/"):
            title, (main, status) = "Event", self.event(path[len("/events/") :])
        else:
            title, main, status = (
                "Not found",
                f"<h1>Not found</h1><p>No console page {h(path)}.</p>",
                404,
            )
        if headers.get("X-Console-Fragment"):
            text = main
        else:
            nav = "".join(
                f'<a href="{url}"{" class=current" if url.rstrip("/") == ("/console" + path).rstrip("/") else ""}>{label}</a>'
                for url, label in NAV
            )
            text = LAYOUT.substitute(
                title=h(title),
                nav=nav,
                main=main,
                version=self.service.version,
                query=h(params.get("q", "")),
                state=h(self.service.location),
            )
        return FakeResponse(
            status,
            text.encode(),
            {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"},
        )

    def static(self, name):
        path = STATIC / name
        if "/" in name or path.suffix not in STATIC_TYPES or not path.is_file():
            return FakeResponse(404, b"not found", {"Content-Type": "text/plain"})
        return FakeResponse(
            200,
            path.read_bytes(),
            {"Content-Type": STATIC_TYPES[path.suffix], "Cache-Control": "max-age=60"},
        )

    # ------------------------------------------------------------------ pages
    def overview(self, params):
        status = self.service.status()
        stripe, push, hooks = status["stripe"], status["push"], status["webhooks"]
        cards = [
            ("Customers", stripe["customer"], "/console/stripe?type=customer"),
            ("PaymentIntents", stripe["payment_intent"], "/console/stripe?type=payment_intent"),
            ("Charges", stripe["charge"], "/console/stripe?type=charge"),
            ("Refunds", stripe["refund"], "/console/stripe?type=refund"),
            ("Events", stripe["event"], "/console/events"),
            ("Pushes sent", push["notifications"], "/console/push"),
            ("Devices", push["devices"], "/console/push"),
            ("Todos", status["todos"]["todos"], "/console/todos"),
        ]
        tiles = "".join(
            f'<a class="tile" href="{url}"><span class="count">{count}</span>{h(label)}</a>'
            for label, count, url in cards
        )
        clock = status["clock"]
        advance = " ".join(
            button(label, "/control/clock/advance", {"duration": duration})
            for label, duration in (("+1 hour", "1h"), ("+1 day", "1d"), ("+7 days", "7d"))
        )
        faults = table(
            ["Service", "Endpoint", "Kind", "Let through first"],
            [
                [h(f["service"]), f"<code>{h(f['endpoint'])}</code>", h(f["kind"]), h(f["after"])]
                for f in status["faults"]
            ],
            "No faults: every call answers normally.",
        )
        options = lambda values: "".join(f'<option value="{h(v)}">{h(v)}</option>' for v in values)  # noqa: E731
        kinds = sorted(set(FAULT_NAMES.values()))
        fault_form = f"""<form class="fault" data-form="/control/faults">
  <select name="service" aria-label="service">{options(SERVICES)}</select>
  <select name="method" aria-label="method">{options(["POST", "GET", "DELETE", "*"])}</select>
  <input name="path" value="/v1/charges" aria-label="path" size="22">
  <select name="kind" aria-label="kind">{options(kinds)}</select>
  <input name="times" type="number" min="1" value="1" aria-label="times" size="3">
  <button type="submit">Switch on</button>
  {button("Clear all faults", "/control/faults/clear", {})}
</form>"""
        triggers = f"""<form class="trigger" data-form="/control/trigger">
  <select name="event" aria-label="event">{options(sorted(TRIGGERS))}</select>
  <button type="submit">Trigger</button>
</form>"""
        endpoint = hooks["url"] or "none (start the service with --forward-to URL)"
        return f"""<h1>Overview</h1>
<section class="tiles">{tiles}</section>
<section><h2>Clock</h2>
<p>Sandbox time <strong id="clock">{h(clock["iso"])}</strong> (moved {h(round(clock["offset_seconds"]))} s ahead).
Advancing it expires holds, settles refunds and brings webhook retries due.</p>
<p>{advance}</p></section>
<section><h2>Faults</h2>{faults}{fault_form}</section>
<section><h2>Trigger an event</h2><p>As <code>stripe trigger</code>: makes the objects behind it.</p>{triggers}</section>
<section><h2>Webhooks</h2><p>Endpoint: <code>{h(endpoint)}</code> · delivered {hooks["delivered"]},
pending {hooks["pending"]}, failed {hooks["failed"]} · retries after {h(", ".join(f"{d:g} s" for d in hooks["retry_delays"]))}</p></section>
<section><h2>Reset</h2><p>Empties every fake (the backend's database keeps its rows).</p>
<p>{button("Reset the sandbox", "/control/reset", {}, "Empty every Stripe object, push and delivery?", "danger")}</p></section>
<div id="message" role="status"></div>"""

    def stripe(self, params):
        query, kind = params.get("q", "").strip(), params.get("type") or None
        if kind not in (
            None,
            "customer",
            "payment_intent",
            "charge",
            "refund",
            "setup_intent",
            "payment_method",
        ):
            kind = None
        objects = self.service.objects(kind, query, 100)
        rows = []
        for obj in objects:
            summary = obj.get("email") or obj.get("receipt_email") or ""
            if obj.get("object") == "customer":
                cards = obj.get("saved_cards") or []
                summary = f"{summary} · {len(cards)} saved card{'s' if len(cards) != 1 else ''}"
                if cards:
                    summary += ": " + ", ".join(f"{c['brand']} …{c['last4']}" for c in cards)
            rows.append(
                [
                    link(f"/console/stripe/{obj['id']}", obj["id"]),
                    h(obj.get("object")),
                    h(money(obj)),
                    status_badge(obj.get("status")) if obj.get("status") else "",
                    h(summary),
                    h(when(obj.get("created"))),
                ]
            )
        filters = " ".join(
            link(f"/console/stripe?{urlencode({'type': name, 'q': query})}", label)
            for name, label in (("customer", "Customers"), ("payment_intent", "PaymentIntents"),
                                ("charge", "Charges"), ("refund", "Refunds"))
        )  # fmt: skip
        title = f"Results for “{h(query)}”" if query else "Stripe objects"
        return f"""<h1>{title}</h1><p class="filters">{filters} · {link("/console/stripe", "All")}</p>
{table(["Id", "Type", "Amount", "Status", "Email / detail", "Created (UTC)"], rows, "No objects match.")}"""

    def stripe_object(self, object_id):
        found = self.service.objects(None, object_id, 1)
        if not found or found[0].get("id") != object_id:
            return (
                f"<h1>No such object</h1><p><code>{h(object_id)}</code> is not in this sandbox.</p>",
                404,
            )
        obj = found[0]
        extra = ""
        if obj.get("object") == "customer":
            extra = "<h2>Saved cards</h2>" + table(
                ["Payment method", "Brand", "Last 4", "Expires"],
                [
                    [
                        h(c["id"]),
                        h(c["brand"]),
                        h(c["last4"]),
                        h(f"{c['exp_month']}/{c['exp_year']}"),
                    ]
                    for c in obj["saved_cards"]
                ],
                "No saved cards.",
            )
        related = self.service.events(limit=20)
        mine = [e for e in related if e.get("object_id") == object_id]
        events = "<h2>Recent events</h2>" + table(
            ["Event", "Type", "Delivery"],
            [
                [link(f"/console/events/{e['id']}", e["id"]), h(e["type"]), self.delivery_cell(e)]
                for e in mine
            ],
            "No recent events for it.",
        )
        body = h(json.dumps(obj, indent=2))
        return (
            f"""<h1>{h(obj.get("object"))} <code id="object-id">{h(object_id)}</code></h1>
{extra}{events}<h2>As the API answers it</h2><pre>{body}</pre>""",
            200,
        )

    @staticmethod
    def delivery_cell(event):
        delivery = event.get("delivery")
        if not delivery:
            return '<span class="muted">not sent (no endpoint)</span>'
        attempts = len(delivery["attempts"])
        last = delivery["attempts"][-1] if attempts else None
        detail = ""
        if last:
            detail = f" · last: {h(last['status'] or last['error'])}"
        return f"{status_badge(delivery['status'])} {attempts} attempt{'s' if attempts != 1 else ''}{detail}"

    def events(self, params):
        events = self.service.events(limit=100, event_type=params.get("type") or None)
        rows = [
            [
                link(f"/console/events/{e['id']}", e["id"]),
                h(e["type"]),
                link(f"/console/stripe/{e['object_id']}", e["object_id"])
                if e.get("object_id")
                else "",
                h(when(e.get("created"))),
                self.delivery_cell(e),
                button("Redeliver", f"/control/events/{e['id']}/redeliver", {}),
            ]
            for e in events
        ]
        return f"""<h1>Events</h1><p>Newest first, each with its webhook deliveries (Stripe retries a failed one).</p>
{table(["Event", "Type", "Object", "Created (UTC)", "Delivery", ""], rows, "No events yet.")}
<div id="message" role="status"></div>"""

    def event(self, event_id):
        event = self.service.event_json(event_id)
        if event is None:
            return f"<h1>No such event</h1><p><code>{h(event_id)}</code></p>", 404
        delivery = event.pop("delivery")
        attempts = table(
            ["When (sandbox time, UTC)", "Status", "Answer", "ms", ""],
            [
                [h(when(a["at"])), h(a["status"] if a["status"] is not None else a["error"]),
                 f"<code>{h(a['answer'])}</code>", h(a["duration_ms"]), "resent" if a["manual"] else ""]
                for a in (delivery or {}).get("attempts", [])
            ],
            "No delivery attempt yet.",
        )  # fmt: skip
        state = status_badge(delivery["status"]) if delivery else "not sent"
        return (
            f"""<h1>{h(event["type"])} <code>{h(event_id)}</code></h1>
<p>Delivery: {state} {button("Redeliver", f"/control/events/{event_id}/redeliver", {})}</p>
<h2>Attempts</h2>{attempts}<div id="message" role="status"></div>
<h2>Payload</h2><pre>{h(json.dumps(event, indent=2))}</pre>""",
            200,
        )

    def push(self, params):
        with self.service.lock:
            provider = self.service.push
            devices = {hwid: dict(device) for hwid, device in dict.items(provider.devices)}
            outbox = list(provider.outbox)
        by_user = {}
        for message in outbox:
            for condition in message.get("conditions") or []:
                if condition[:2] == ["UserID", "EQ"]:
                    by_user.setdefault(str(condition[2]), []).append(message)
        sections = []
        platforms = {1: "iOS", 3: "Android"}
        for hwid, device in sorted(devices.items(), key=lambda item: str(item[1].get("userId"))):
            received = list(reversed(by_user.get(str(device.get("userId")), [])))
            rows = [
                [h(m["content"]), h(m.get("send_date")), f"<code>{h(m['code'])}</code>"]
                for m in received[:50]
            ]
            sections.append(
                f"""<section class="device"><h2>{h(platforms.get(device.get("device_type"), "device"))} <code>{h(hwid)}</code>
· user {h(device.get("userId"))}</h2><p class="muted">push token <code>{h(device.get("push_token"))}</code></p>
{table(["What the phone showed", "Send date", "Message code"], rows, "Nothing received yet.")}</section>"""
            )
        unregistered = sorted(set(by_user) - {str(d.get("userId")) for d in devices.values()})
        for user in unregistered:
            rows = [
                [h(m["content"]), h(m.get("send_date")), f"<code>{h(m['code'])}</code>"]
                for m in reversed(by_user[user][-50:])
            ]
            sections.append(
                f"<section><h2>User {h(user)} (no device registered now)</h2>{table(['Notification', 'Send date', 'Message code'], rows)}</section>"
            )
        return f"""<h1>Push</h1><p>{len(devices)} device{"s" if len(devices) != 1 else ""} registered · {len(outbox)} notification{"s" if len(outbox) != 1 else ""} sent.</p>
{"".join(sections) or '<p class="empty">No devices and no notifications yet.</p>'}"""

    def todos(self, params):
        with self.service.lock:
            todos = list(self.service.todos.todos)
        rows = [
            [
                h(t["userId"]),
                h(t["id"]),
                h(t["title"]),
                f'<input type="checkbox" aria-label="completed" data-patch="/control/todos/{t["id"]}"{" checked" if t["completed"] else ""}>',
            ]
            for t in todos
        ]
        open_count = sum(1 for t in todos if not t["completed"])
        return f"""<h1>Todos</h1><p>What the todo API answers: {len(todos)} todos, {open_count} unfinished (reminders count these).</p>
{table(["User", "Id", "Title", "Completed"], rows, "No todos.")}"""
