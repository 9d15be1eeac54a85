"""The events Stripe would send: emitted on each state change, snapshotted, signed for webhooks."""

import functools
import hashlib
import hmac
import json
import time
import zlib

from payments.testing.engine.wire import API_VERSION


@functools.cache
def snapshot_dictionary():
    """A zlib preset dictionary: the JSON of typical objects (a charge, a payment intent, a
    refund, a customer) as this engine writes them, with ids and times blanked, so it is the
    same in every process running this code (dumped state loads elsewhere). With it a
    charge's snapshot compresses to a few hundred bytes."""
    import re

    from payments.testing.engine import FakeStripe

    engine = FakeStripe()
    engine._emit = lambda type, obj, previous=None: None
    charge = engine.create_charge({"amount": 500, "currency": "usd", "source": "tok_visa"})
    intent = engine.create_payment_intent(
        {"amount": 500, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    refund = engine.create_refund({"charge": charge["id"]})
    customer = engine.create_customer({"email": "a@example.com"})
    text = json.dumps([customer, refund, intent, charge], separators=(",", ":"))
    text = re.sub(r"[a-z]+_[0-9a-f]{12}\d+", "x", text)
    text = re.sub(r"\d{9,}", "0", text)
    return re.sub(r"_secret_[\w-]+", "", text).encode()[-32768:]


@functools.cache
def _primed_packer():
    return zlib.compressobj(1, zdict=snapshot_dictionary())


def pack(text):
    packer = _primed_packer().copy()  # cheaper than loading the dictionary again
    return packer.compress(text.encode()) + packer.flush()


def unpack(packed):
    unpacker = zlib.decompressobj(zdict=snapshot_dictionary())
    return unpacker.decompress(packed) + unpacker.flush()


class Events:
    def _reset_events(self):
        # event id -> (the object as JSON text, previous attributes), until someone reads it:
        # one string is the cheapest snapshot that still shows the object as it was.
        self._snapshots = {}
        self._last_emitted = (None, "")
        self._request_id = self._idempotency_key = None  # of the request being handled
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
            "request": None,  # filled in when the event is read (see _materialize)
            "type": type,
        }
        # The event shows the object as it is now: its JSON text, zlib-compressed (a third of
        # the size) until someone reads the event. The text is also the answer's body when the
        # handler returns this object unchanged (see Pipeline.handle).
        text = json.dumps(obj, separators=(",", ":"))
        self._snapshots[event["id"]] = (
            pack(text),
            previous,
            self._request_id,
            self._idempotency_key,
        )
        self._last_emitted = (obj, text)
        self.store(event)
        return event

    def _materialize(self, event):
        if event["data"] is None:
            packed, previous, request_id, idempotency_key = self._snapshots.pop(event["id"])
            event["request"] = {"id": request_id, "idempotency_key": idempotency_key}
            event["data"] = {"object": json.loads(unpack(packed))}
            if previous is not None:
                event["data"]["previous_attributes"] = previous
        return event

    @property
    def events(self):
        """Every event so far, oldest first, as Stripe would send them."""
        with self._lock:
            index = self._indexes.get(("event", None, None), ())
            return [self._materialize(self.objects[i]) for i in index if i in self.objects]


def sign_webhook(payload, secret, timestamp=None):
    """The Stripe-Signature header Stripe would send for `payload` (bytes or str)."""
    if isinstance(payload, bytes):
        payload = payload.decode()
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    signature = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={signature}"
