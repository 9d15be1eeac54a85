"""The fake Stripe as sandbox mode serves it: shared state, forwarded webhooks, a 3DS page.

`SandboxStripe` wraps an engine (anything with `handle()`, `dump_state()` /
`load_state()`, `events`, `delivered`, `get()` and `complete_authentication()`):

- every call runs in a store transaction (backend.sandbox_store), so all workers
  share one Stripe and a restart keeps it;
- the events a call emitted go to a WebhookForwarder, once the call is saved;
- a PaymentIntent that needs 3-D Secure and was given a `return_url` gets
  `next_action.redirect_to_url` pointing at the sandbox's 3DS page, as Stripe's test
  mode does (without `return_url` Stripe answers `use_stripe_sdk`, and so do we;
  the page is reachable by the intent's id either way: /sandbox/3ds/<pi_...>/).
"""

import json
from urllib.parse import urlencode

from backend.sandbox_store import MemoryStore, SharedFake
from fakes.contract import FakeResponse
from fakes.stripe import decode_form

THREE_DS_PATH = "/sandbox/3ds/{id}/"


class SandboxStripe(SharedFake):
    def __init__(self, engine, store=None, forwarder=None, public_url="http://localhost:8000"):
        super().__init__(engine, store or MemoryStore(), "stripe")
        self.forwarder = forwarder
        self.public_url = public_url.rstrip("/")

    @property
    def engine(self):
        return self.fake

    def three_ds_url(self, intent_id):
        return self.public_url + THREE_DS_PATH.format(id=intent_id)

    # A long-lived sandbox keeps the objects and events, not every request's log line.
    KEEP_REQUESTS = 200

    def _with_events(self, fn, write=True):
        """fn() in a transaction; returns its result; the events it emitted are forwarded."""

        def call():
            before = self.engine.event_count()
            outcome = fn()
            # the engine's own log (`requests` is a decoded copy: trimming it trimmed nothing)
            requests = getattr(self.engine, "_requests", None)
            if isinstance(requests, list) and len(requests) > self.KEEP_REQUESTS:
                del requests[: -self.KEEP_REQUESTS]
            return outcome, self.engine.events_since(before)

        result, emitted = self.run(call, write=write)
        if self.forwarder is not None and emitted:
            self.forwarder.enqueue(emitted)
        return result

    def call(self, fn, write=True):
        """fn() on the engine holding the shared state; its events are forwarded."""
        return self._with_events(fn, write=write)

    def handle(self, method, path, query, body, headers):
        def call():
            answer = self.engine.handle(method, path, query, body, headers)
            if path.startswith("/v1/payment_intents") and answer.status == 200:
                answer = self._redirect_next_action(method, body, answer)
            return answer

        return self._with_events(call, write=method.upper() != "GET")

    def _redirect_next_action(self, method, body, answer):
        params = decode_form(body.decode()) if method.upper() == "POST" and body else {}
        return_url = params.get("return_url")
        try:
            payload = json.loads(answer.body)
        except ValueError:
            return answer
        if (
            not return_url
            or payload.get("object") != "payment_intent"
            or payload.get("status") != "requires_action"
        ):
            return answer
        intent = self.engine.get(payload["id"])
        query = urlencode({"client_secret": intent["client_secret"]})
        intent["next_action"] = {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "return_url": return_url,
                "url": f"{self.three_ds_url(intent['id'])}?{query}",
            },
        }
        return FakeResponse.json(answer.status, intent, answer.headers)

    # ------------------------------------------------------------ 3DS page
    def intent(self, intent_id):
        """A copy of the intent as stored now, or None."""

        def find():
            try:
                found = self.engine.get(intent_id)
            except KeyError:
                return None
            if found.get("object") != "payment_intent":
                return None
            return json.loads(json.dumps(found))

        return self.run(find, write=False)

    def complete_authentication(self, intent_id, succeed=True):
        """The customer passes or fails the challenge: settles the intent, emits, forwards."""
        return self._with_events(
            lambda: json.loads(
                json.dumps(self.engine.complete_authentication(intent_id, succeed=succeed))
            )
        )

    def settle_refunds(self):
        """What Stripe does "later" to the refund test cards' refunds (4000000000007726's
        pending refund succeeds, 4000000000005126's fails); emits and forwards the events."""
        return self._with_events(lambda: json.loads(json.dumps(self.engine.settle_refunds())))

    def mark_delivered(self, event_id):
        def mark():
            self.engine.delivered.add(event_id)

        self.run(mark)
