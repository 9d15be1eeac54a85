"""The events Stripe would send: emitted on each state change, snapshotted, signed for webhooks."""

import functools
import hashlib
import hmac
import json
import re
import time
import zlib

from fakes.stripe.wire import API_VERSION, encode_json

EVENT_INDEX = ("event", None, None)
PACK_EVERY = 128


def peek(mapping, key, default=None):
    """A read that changes nothing, bypassing a tracking dict (a sandbox store saves
    every key read through one, since a stored object may be changed in place)."""
    return dict.get(mapping, key, default)


@functools.cache
def snapshot_dictionary(engine_class):
    """A zlib preset dictionary: the JSON of typical objects (a charge, a payment intent, a
    refund, a customer) as this engine writes them, with ids and times blanked, so it is the
    same in every process running this code (dumped state loads elsewhere). With it a
    charge's snapshot compresses to a few hundred bytes."""
    engine = engine_class()  # the engine this mixin is part of (it imports this module)
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
def _primed_packer(engine_class):
    return zlib.compressobj(1, zdict=snapshot_dictionary(engine_class))


def pack(text, engine_class):
    packer = _primed_packer(engine_class).copy()  # cheaper than loading the dictionary again
    return packer.compress(text.encode()) + packer.flush()


def unpack(packed, engine_class):
    unpacker = zlib.decompressobj(zdict=snapshot_dictionary(engine_class))
    return unpacker.decompress(packed) + unpacker.flush()


def snapshot_text(packed, engine_class):
    """A stored event snapshot's JSON text, whether still text or packed."""
    return packed if isinstance(packed, str) else unpack(packed, engine_class).decode()


class Events:
    def _reset_events(self):
        # event id -> (the object as JSON text, previous attributes), until someone reads it:
        # one string is the cheapest snapshot that still shows the object as it was.
        self._snapshots = {}
        self._fresh = 0  # snapshots kept as text since the last packing (see _emit)
        self._last_emitted = (None, "")
        self._request_id = self._idempotency_key = None  # of the request being handled
        self.delivered = set()

    def _emit(self, type, obj, previous=None):
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": None,
            "livemode": False,
            "pending_webhooks": 1,
            "request": None,  # filled in when the event is read (see _materialize)
            "type": type,
        }
        # The event shows the object as it is now: its JSON text, until someone reads the
        # event. The text is also the answer's body when the handler returns this object
        # unchanged (see Pipeline._encode). Unread snapshots are zlib-compressed (a third of
        # the size) PACK_EVERY at a time, so an event read soon after (the sandbox forwards
        # each one at once) is never compressed at all.
        text = encode_json(obj)
        self._snapshots[event["id"]] = (text, previous, self._request_id, self._idempotency_key)
        self._last_emitted = (obj, text)
        self.store(event)
        self._fresh += 1
        if self._fresh >= PACK_EVERY:
            self._pack_fresh()
        return event

    def _pack_fresh(self):
        """Compress the snapshots still held as text (the newest: older ones are packed)."""
        snapshots = self._snapshots
        for event_id in reversed(snapshots):  # (values change, not keys: safe)
            snapshot = peek(snapshots, event_id)
            if not isinstance(snapshot[0], str):
                break
            snapshots[event_id] = (pack(snapshot[0], type(self)), *snapshot[1:])
        self._fresh = 0

    def _materialize(self, event):
        if event["data"] is None:
            self.objects[event["id"]] = event  # (changed: a store that tracks writes saves it)
            packed, previous, request_id, idempotency_key = self._snapshots.pop(event["id"])
            event["request"] = {"id": request_id, "idempotency_key": idempotency_key}
            event["data"] = {"object": json.loads(snapshot_text(packed, type(self)))}
            if previous is not None:
                event["data"]["previous_attributes"] = previous
        return event

    @property
    def events(self):
        """Every event so far, oldest first, as Stripe would send them."""
        return self.events_since(0)

    def event_count(self):
        with self._lock:
            return len(peek(self._indexes, EVENT_INDEX, ()))

    def events_since(self, count):
        """The events after the first `count` (see event_count), oldest first."""
        with self._lock:
            objects = self.objects
            return [
                self._materialize(peek(objects, i))
                for i in peek(self._indexes, EVENT_INDEX, ())[count:]
                if i in objects
            ]


def sign_webhook(payload, secret, timestamp=None):
    """The Stripe-Signature header Stripe would send for `payload` (bytes or str)."""
    if isinstance(payload, bytes):
        payload = payload.decode()
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    signature = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={signature}"
