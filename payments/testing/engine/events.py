"""The events Stripe would send: emitted on each state change, snapshotted, signed for webhooks."""

import hashlib
import hmac
import json
import time

from payments.testing.engine.wire import API_VERSION


class Events:
    def _reset_events(self):
        # event id -> (the object as JSON text, previous attributes), until someone reads it:
        # one string is the cheapest snapshot that still shows the object as it was.
        self._snapshots = {}
        self.delivered = set()

    def _emit(self, type, obj, previous=None):
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": None,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type,
        }
        self._snapshots[event["id"]] = (json.dumps(obj, separators=(",", ":")), previous)
        self.store(event)
        return event

    def _materialize(self, event):
        if event["data"] is None:
            text, previous = self._snapshots.pop(event["id"])
            event["data"] = {"object": json.loads(text)}
            if previous is not None:
                event["data"]["previous_attributes"] = previous
        return event

    @property
    def events(self):
        """Every event so far, oldest first, as Stripe would send them."""
        with self._lock:
            index = self._indexes.get(("event", None, None), {"ids": []})
            return [self._materialize(self.objects[i]) for i in index["ids"] if i in self.objects]


def sign_webhook(payload, secret, timestamp=None):
    """The Stripe-Signature header Stripe would send for `payload` (bytes or str)."""
    if isinstance(payload, bytes):
        payload = payload.decode()
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    signature = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={signature}"
