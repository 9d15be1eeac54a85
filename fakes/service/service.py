"""SandboxService: the fakes' state, owned by one process, kept durable, steered from outside.

One object holds the fake Stripe, the push provider and the todo API, and everything a
staging sandbox adds around them: the clock, the fault switches every client sees, the
webhook endpoint and each event's deliveries, the journal (journal.py). Every request
and every control call runs under one lock, as one transaction: the fake handles it,
what it changed is appended to the journal, and only then does the answer leave. The
HTTP side (app.py) is a thin router over `handle()` and the control methods here.
"""

import collections
import contextlib
import copy
import functools
import gc
import json
import logging
import queue
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from fakes.contract import FAULT_KINDS, FakeResponse, FaultPlan, TransportFault
from fakes.pushwoosh import FakePushProvider
from fakes.service.journal import Journal, encode, loads, pickler_dumps
from fakes.service.recorders import (
    SNAPSHOT_CHUNK,
    StripeRecorder,
    peek_value,
    push_recorder,
    todos_recorder,
)
from fakes.service.triggers import TRIGGERS, fill
from fakes.service.webhooks import TEST_MODE_RETRIES, Deliveries, Delivery
from fakes.stripe import FakeStripe, decode_form
from fakes.stripe.events import EVENT_INDEX, peek, snapshot_text
from fakes.stripe.resources.charges import shared
from fakes.stripe.wire import FrozenDict, encode_json
from fakes.todos import FakeTodoApi

logger = logging.getLogger(__name__)

SERVICES = ("stripe", "push", "todos")
# What the command line calls the fault kinds the fakes know (fakes.contract.FAULT_KINDS).
FAULT_NAMES = {
    "5xx": "api_error",
    "500": "api_error",
    "api_error": "api_error",
    "429": "rate_limit",
    "rate_limit": "rate_limit",
    "timeout": "timeout",
    "reset": "connection_error",
    "connection_error": "connection_error",
    "lost": "lost_response",
    "lost_response": "lost_response",
    "slow": "slow_response",
    "slow_response": "slow_response",
}
assert set(FAULT_NAMES.values()) == FAULT_KINDS
SLOW_DELAY = 5.0  # seconds a slow answer comes late, unless the fault says
KEEP_REQUESTS = 200  # request-log lines kept per fake (a debugging aid, never journaled)
COMPACT_AFTER = 32 * 2**20  # journal bytes before a snapshot is written (replay time at a start)
JOURNAL_PER_SNAPSHOT = 2  # ...and journal bytes per byte of the last snapshot (_compaction_due)
SANDBOX_KEY = "sk_test_sandbox"  # the key the service's own calls (triggers) use


def new_webhook_secret():
    return "whsec_sandbox_" + secrets.token_hex(24)


class Clock:
    """The sandbox's time: the machine's, moved forward by `offset` seconds."""

    def __init__(self):
        self.offset = 0.0

    def now(self):
        return time.time() + self.offset


class ControlError(Exception):
    """A control call refused: (status, code, message, param)."""

    def __init__(self, status, code, message, param=None):
        super().__init__(message)
        self.status, self.code, self.message, self.param = status, code, message, param


# ----------------------------------------------------------------- pickling
@functools.lru_cache(maxsize=4096)
def intern_frozen(key):
    """A shared sub-object of the fake Stripe, back from the journal as one shared copy."""
    return shared(json.loads(key))


_FROZEN_KEYS = {}  # id -> (the FrozenDict, its JSON): the shared ones live for good


def _reduce_frozen(frozen):
    found = _FROZEN_KEYS.get(id(frozen))
    if found is None or found[0] is not frozen:
        found = (frozen, json.dumps(frozen, sort_keys=True))
        if len(_FROZEN_KEYS) < 10_000:
            _FROZEN_KEYS[id(frozen)] = found
    return (intern_frozen, (found[1],))


DUMPS = pickler_dumps({FrozenDict: _reduce_frozen})


SNAPSHOT_DONE = ("snapshot done",)  # put by the step that finds no record left


class SnapshotFailed(RuntimeError):
    """A snapshot was abandoned (the journal it would have replaced is kept)."""


class SnapshotRun:
    """One snapshot being written: its records (a generator advanced under the service's
    lock) and the queue that hands them, in order, to its writing thread."""

    def __init__(self, generation, steps):
        self.generation, self.steps, self.ready = generation, steps, queue.SimpleQueue()


class SandboxService:
    def __init__(
        self,
        state=None,
        *,
        forward_to=None,
        webhook_secret=None,
        retry_delays=TEST_MODE_RETRIES,
        public_url=None,
        fsync=False,
        console_password=None,
        webhook_target=None,
        compact_after=COMPACT_AFTER,
        delivery_workers=4,
    ):
        self.lock = threading.RLock()
        self.started_at = time.time()
        self.clock = Clock()
        self.stripe = FakeStripe()
        self.stripe.clock = self.clock.now  # what it makes is stamped with the sandbox's time
        self.push = FakePushProvider()
        self.todos = FakeTodoApi()
        self.push.clock = self.clock.now
        self.fakes = {"stripe": self.stripe, "push": self.push, "todos": self.todos}
        self.recorders = {
            "stripe": StripeRecorder(self.stripe, DUMPS),
            "push": push_recorder(self.push),
            "todos": todos_recorder(self.todos),
        }
        self.slow = {name: FaultPlan() for name in SERVICES}
        self.slow_delay = dict.fromkeys(SERVICES, SLOW_DELAY)
        self.endpoint = {"url": None, "secret": None, "enabled_events": ["*"]}
        self.deliveries = Deliveries(self, retry_delays, delivery_workers, webhook_target)
        self.public_url = public_url
        self.url = public_url or "http://127.0.0.1"
        self.console_password = console_password
        self.version = 0
        self.compact_after = compact_after
        self.journal = None
        self.location = "memory"
        self.loaded = {"records": 0, "seconds": 0.0}
        self._compacting = None
        self._snapshot = None  # the SnapshotRun being written: see _snapshot_step
        self._served = 0
        self.calls = collections.deque(maxlen=2000)  # (number, service, method, path, outcome)
        self.calls_total = 0
        if state not in (None, "", "memory"):
            self._load(Path(state), fsync)
        with self.lock:
            endpoint = dict(self.endpoint, url=forward_to or None)
            endpoint["secret"] = webhook_secret or endpoint["secret"] or new_webhook_secret()
            if endpoint != self.endpoint:
                self.endpoint = endpoint
                self._commit((), {"endpoint": dict(endpoint)})
        self.deliveries.start()

    # ================================================================ durability
    def _load(self, directory, fsync):
        started = time.perf_counter()
        self.journal = Journal(directory, DUMPS, loads, fsync=fsync)
        self.location = str(directory)
        # Loading makes hundreds of thousands of objects that all live on; the cyclic
        # collector would scan the growing heap again and again for garbage there is none
        # of (it took half of a start with 100k charges and a 100 MB journal: 2.1 s -> 1.1 s)
        collecting = gc.isenabled()
        gc.disable()
        try:
            snapshot_records, replayed = self._load_records()
        finally:
            if collecting:
                gc.enable()
        self.loaded = {
            "records": snapshot_records + replayed,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if replayed and self.journal.bytes_written > self.compact_after // 4:
            self._start_compaction()

    def _load_records(self):
        """Apply the snapshot, then the journal; (snapshot records, journal records)."""
        snapshot, records = self.journal.load()
        for record in snapshot:
            self._apply_snapshot(record)
        for record in records:
            self._apply(record)
        for recorder in self.recorders.values():
            recorder.finish_load()
            recorder.discard()
        for record in list(self.deliveries.records.values()):
            self.deliveries.load(record)
        return len(snapshot), len(records)

    def _apply_snapshot(self, record):
        if record[0] == "fake":
            _, name, kind, attr, value = record
            self.recorders[name].apply_snapshot(kind, attr, value)
        elif record[0] == "svc":
            self._apply_service(dict([record[1:]]))

    def _apply(self, record):
        if record[0] == "reset":
            self._reset_fakes()
            return
        _, changes, service = record
        for name, change in changes.items():
            self.recorders[name].apply(change)
        if service:
            self._apply_service(service)

    def _apply_service(self, service):
        if "clock" in service:
            self.clock.offset = service["clock"]
        if "endpoint" in service:
            self.endpoint = dict(service["endpoint"])
        for data in service.get("deliveries", ()):
            record = Delivery.from_tuple(data)
            self.deliveries._set(record)

    def _commit(self, names, service=None):
        """Journal what `names` changed (and the service's own changes): under the lock,
        before the answer is sent."""
        changes = {}
        for name in names:
            change = self.recorders[name].changes()
            if change:
                changes[name] = change
        if not changes and not service:
            return
        self.version += 1
        if self.journal is not None:
            self.journal.append(("c", changes, service))
            if self._compacting is None and self._compaction_due():
                self._start_compaction()
            else:
                self._snapshot_step()

    def _compaction_due(self):
        """Past `compact_after` bytes of journal, and past twice the last snapshot's size.
        A snapshot costs what is stored, so writing one every fixed number of bytes would
        make each request pay more as the fakes fill; spaced in proportion to the state,
        the cost per request stays flat (Redis rewrites its AOF by the same kind of rule,
        `auto-aof-rewrite-percentage`). Twice, not once: a snapshot is compressed (a
        charge is ~0.4 KB there, ~5 KB of journal), so the journal holds a fraction of
        the state's worth of changes even then, and a start after `kill -9` replays it in
        about the time it takes to read the snapshot (docs/sandbox.md, "Durability")."""
        floor = max(self.compact_after, JOURNAL_PER_SNAPSHOT * self.journal.snapshot_bytes)
        return self.journal.bytes_written > floor

    def commit_deliveries(self, records):
        self._commit(("stripe",), {"deliveries": [record.as_tuple() for record in records]})

    def _start_compaction(self):
        """Rotate the journal now; the snapshot is written from a thread (journal.py)."""
        with self.lock:
            generation = self.journal.rotate()
            plans = {name: recorder.snapshot_plan() for name, recorder in self.recorders.items()}
            events = list(self.deliveries.records)
            service = {"clock": self.clock.offset, "endpoint": dict(self.endpoint)}
            run = SnapshotRun(generation, self._snapshot_records(plans, events, service))
            self._snapshot = run
        thread = threading.Thread(
            target=self._write_snapshot, args=(run,), name="sandbox-snapshot", daemon=True
        )
        self._compacting = thread
        thread.start()

    def _snapshot_records(self, plans, events, service):
        """The snapshot's records, each read when it is reached: advance under the lock."""
        for key, value in service.items():
            yield ("svc", key, value)
        for name, plan in plans.items():
            recorder = self.recorders[name]
            for kind, attr, content in plan:
                if kind != "dict":
                    yield ("fake", name, kind, attr, content)
                    continue
                for start in range(0, len(content), SNAPSHOT_CHUNK):
                    keys = content[start : start + SNAPSHOT_CHUNK]
                    yield recorder.snapshot_record(attr, keys, self._encode_record)
        for start in range(0, len(events), SNAPSHOT_CHUNK):
            found = (self.deliveries.records.get(e) for e in events[start : start + SNAPSHOT_CHUNK])
            yield ("svc", "deliveries", [r.as_tuple() for r in found if r is not None])

    def _encode_record(self, record):
        return encode(record, self.journal.dumps)

    def _snapshot_step(self, run=None):
        """Under the lock: take the next record of the snapshot being written (`run`, or
        the current one) and hand it to its writer. Every journaled change takes one step
        too, so a busy service finishes its snapshot as surely as an idle one (as Redis
        rehashes a dict a step per command): taking them all from the writing thread would
        either hold the lock against the requests or wait behind them for ever."""
        current = self._snapshot
        if current is None or (run is not None and run is not current):
            return
        try:
            record = next(current.steps)
        except StopIteration:
            record = SNAPSHOT_DONE
        except BaseException as error:  # the writer gives up; a request goes on
            current.ready.put(error)
            self._snapshot = None  # (after the put: see records() in _write_snapshot)
            if not isinstance(error, Exception):
                raise
            return
        current.ready.put(record)
        if record is SNAPSHOT_DONE:
            self._snapshot = None

    def _write_snapshot(self, run):
        def records():
            while True:
                try:
                    record = run.ready.get_nowait()
                except queue.Empty:
                    if self._snapshot is not run and run.ready.empty():
                        raise SnapshotFailed("another snapshot took its place") from None
                    if self.lock.acquire(timeout=0.01):  # busy: the requests take steps
                        try:
                            self._snapshot_step(run)
                        finally:
                            self.lock.release()
                    continue
                if record is SNAPSHOT_DONE:
                    return  # (the only way a snapshot is complete: see _snapshot_step)
                if isinstance(record, BaseException):
                    raise SnapshotFailed(f"a step failed: {record!r}") from record
                yield record

        try:
            self.journal.write_snapshot(run.generation, records())
        except Exception:
            logger.exception(
                "sandbox state: writing snapshot %s failed (the journal is kept)", run.generation
            )
        finally:
            if self._snapshot is run:
                self._snapshot = None
            if self._compacting is threading.current_thread():
                self._compacting = None

    def wait_compaction(self, timeout=60):
        thread = self._compacting
        if thread is not None:
            thread.join(timeout)

    def close(self, snapshot=True):
        """Stop the deliveries and close the journal; with `snapshot`, first write a snapshot
        of what the journal holds since the last one (cheap: only changed objects are
        pickled again), so the next start reads a snapshot and an empty journal. A second
        call does nothing."""
        self.deliveries.stop()
        self.wait_compaction()
        if self.journal is not None and not self.journal.closed:
            if self._compacting is not None:
                logger.warning(
                    "sandbox state: a snapshot is still being written; the journal is kept"
                )
            elif snapshot and self.journal.bytes_written > 0:
                self._start_compaction()
                self.wait_compaction(timeout=120)
            with self.lock:
                self.journal.close()

    # ================================================================ requests
    def handle(self, name, method, path, query, body, headers):
        """A request to one fake, as its provider's API answers it."""
        method = method.upper()
        writes = method not in ("GET", "HEAD", "OPTIONS")
        fake = self.fakes[name]
        fault = answer = None
        with self.lock:
            slow = self.slow[name].take(method, path)
            before = self.stripe.event_count() if name == "stripe" else 0
            try:
                answer = fake.handle(method, path, query, body, headers)
                if name == "stripe":
                    answer = self._stripe_answer(method, path, body, answer)
            except TransportFault as error:
                fault = error  # performed or not, the state is what it is
            finally:
                self._settle(name, writes, before)
                self.calls_total += 1
                outcome = fault.kind if fault is not None else getattr(answer, "status", None)
                if slow is not None and fault is None:
                    outcome = f"slow_response {outcome}"  # (answered late, and with what)
                self.calls.append((self.calls_total, name, method, path, outcome))
        if fault is not None:
            raise fault
        if slow is not None:
            raise TransportFault("slow_response", answer=answer, delay=self.slow_delay[name])
        return answer

    def calls_since(self, number, service=None):
        """[(number, service, method, path, status or fault)] after call `number`, oldest first
        (the last 2,000 are kept)."""
        with self.lock:
            return [c for c in self.calls if c[0] > number and service in (None, c[1])]

    def _settle(self, name, writes, before=0):
        """After a request: forward its events, journal its changes (or forget a read's)."""
        self._served += 1
        if self._served % 64 == 0:  # trim the fakes' own request logs
            for fake in (self.stripe, self.push):
                log = getattr(fake, "_requests", None) if fake is self.stripe else fake.requests
                if isinstance(log, list) and len(log) > KEEP_REQUESTS:
                    del log[:-KEEP_REQUESTS]
        if not writes:
            if name == "stripe" and getattr(self.stripe._snapshots, "touched", None):
                # a read that opened an event: its data filled in, its stored snapshot
                # dropped, two dicts a fuzzy snapshot may write either side of the read;
                # journaled (once per event), so a start after kill -9 never finds one
                # without the other
                self._commit(("stripe",))
                return
            self.recorders[name].discard()
            return
        if name == "stripe":
            self._settle_stripe_event_work(before)
        else:
            self._commit((name,))

    def _stripe_answer(self, method, path, body, answer):
        """A PaymentIntent confirmed with a `return_url` that needs 3-D Secure gets
        `next_action.redirect_to_url` pointing at this service's page, as Stripe's test
        mode does (without a return_url Stripe answers `use_stripe_sdk`, and so do we)."""
        if method != "POST" or not path.startswith("/v1/payment_intents") or answer.status != 200:
            return answer
        params = decode_form(body.decode()) if body else {}
        return_url = params.get("return_url")
        if not return_url:
            return answer
        try:
            payload = json.loads(answer.body)
        except ValueError:
            return answer
        if payload.get("object") != "payment_intent" or payload.get("status") != "requires_action":
            return answer
        intent = self.stripe.get(payload["id"])
        query = urlencode({"client_secret": intent["client_secret"]})
        intent["next_action"] = {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "return_url": return_url,
                "url": f"{self.three_ds_url(intent['id'])}?{query}",
            },
        }
        return FakeResponse.json(answer.status, intent, answer.headers)

    def three_ds_url(self, intent_id):
        return f"{(self.public_url or self.url).rstrip('/')}/sandbox/3ds/{intent_id}/"

    # ================================================================ webhooks
    def event_payload(self, event_id):
        """The event's JSON as Stripe sends it, without turning its stored snapshot into
        objects for good (a forwarded event would otherwise cost its full size in memory)."""
        objects = self.stripe.objects
        event = peek_value(objects, event_id)
        if event is None or event.get("object") != "event":
            return None
        if event["data"] is not None:
            return encode_json(event)
        snapshot = peek(self.stripe._snapshots, event_id)
        try:
            packed, previous, request_id, idempotency_key = snapshot
            text = snapshot_text(packed, type(self.stripe))
        except (TypeError, ValueError):
            return encode_json(self.stripe.get(event_id))  # another shape: the engine's way
        data = '{"object":' + text
        if previous is not None:
            data += ',"previous_attributes":' + encode_json(previous)
        head = dict(
            event, data=None, request={"id": request_id, "idempotency_key": idempotency_key}
        )
        return encode_json(head).replace('"data":null', '"data":' + data + "}", 1)

    def delivered(self, event_id):
        event = self.stripe.objects.get(event_id)
        if event is not None:
            event["pending_webhooks"] = 0

    def set_endpoint(self, url=None, secret=None, enabled_events=None):
        with self.lock:
            endpoint = dict(self.endpoint)
            if url is not None:
                endpoint["url"] = url or None
            if secret:
                endpoint["secret"] = secret
            if enabled_events is not None:
                endpoint["enabled_events"] = list(enabled_events) or ["*"]
            self.endpoint = endpoint
            self._commit((), {"endpoint": dict(endpoint)})
            return dict(endpoint)

    def retry_pending_deliveries(self):
        with self.lock:
            records = self.deliveries.retry_pending()
            if records:
                self.commit_deliveries(records)
            return len(records)

    def redeliver(self, event_id):
        with self.lock:
            event = peek_value(self.stripe.objects, event_id)
            if event is None or event.get("object") != "event":
                raise ControlError(404, "resource_missing", f"No such event: {event_id!r}", "event")
            if not self.endpoint.get("url"):
                raise ControlError(
                    400, "no_webhook_endpoint", "No webhook endpoint: start with --forward-to URL."
                )
            record = self.deliveries.redeliver(event_id, event["type"])
            self.commit_deliveries([record])
            return record

    # ================================================================ control
    def status(self):
        with self.lock:
            engine = self.stripe
            counts = {
                name: len(peek(engine._indexes, (name, None, None), ()))
                for name in ("customer", "payment_intent", "charge", "refund", "setup_intent",
                             "payment_method", "event")
            }  # fmt: skip
            return {
                "object": "sandbox_status",
                "url": self.url,
                "public_url": self.public_url or self.url,
                "state": self.location,
                "journal": self.journal.sizes() if self.journal else None,
                "loaded": self.loaded,
                "uptime_seconds": round(time.time() - self.started_at, 1),
                "version": self.version,
                "clock": self.clock_json(),
                "stripe": counts,
                "push": {
                    "devices": len(self.push.devices),
                    "notifications": len(self.push.outbox),
                    "application": self.push.application,
                },
                "todos": {"todos": len(self.todos.todos), "users": len(self.todos.users)},
                "webhooks": {
                    "url": self.endpoint.get("url"),
                    "enabled_events": self.endpoint.get("enabled_events"),
                    "retry_delays": list(self.deliveries.retry_delays),
                    **self.deliveries.counts,
                },
                "faults": self.faults(),
            }

    def clock_json(self):
        now = self.clock.now()
        return {
            "now": now,
            "iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "offset_seconds": self.clock.offset,
        }

    def faults(self):
        found = []
        with self.lock:
            for name in SERVICES:
                for plan in (self.fakes[name].faults, self.slow[name]):
                    for endpoint, kind, after in plan.planned():
                        found.append(
                            {"service": name, "endpoint": endpoint, "kind": kind, "after": after}
                        )
        return found

    def add_fault(self, service, method, path, kind, times=1, after=0, delay=None):
        if service not in SERVICES:
            raise ControlError(
                400, "invalid_service", f"Service is one of {', '.join(SERVICES)}.", "service"
            )
        canonical = FAULT_NAMES.get(str(kind).lower())
        if canonical is None:
            raise ControlError(
                400,
                "invalid_fault_kind",
                f"Kind is one of {', '.join(sorted(FAULT_NAMES))}.",
                "kind",
            )
        method = str(method).upper()
        if method not in ("*", "GET", "POST", "DELETE", "PUT", "PATCH"):
            raise ControlError(
                400, "invalid_method", "Method is GET, POST, DELETE, PUT, PATCH or *.", "method"
            )
        if not (path == "*" or str(path).startswith("/")):
            raise ControlError(
                400,
                "invalid_path",
                "Path starts with / (a trailing * matches a prefix), or is *.",
                "path",
            )
        endpoint = "*" if method == "*" and path == "*" else f"{method} {path}"
        if method == "*":
            endpoint = "*"  # any method: only "*" alone is understood by the plans
        with self.lock:
            if canonical == "slow_response":
                if delay is not None:
                    self.slow_delay[service] = float(delay)
                self.slow[service].add(endpoint, canonical, times, after)
            else:
                self.fakes[service].faults.add(endpoint, canonical, times, after)
            self.version += 1
        return self.faults()

    def clear_faults(self, service=None):
        with self.lock:
            for name in SERVICES if service is None else (service,):
                self.fakes[name].faults.clear()
                self.slow[name].clear()
            self.version += 1
        return self.faults()

    def advance_clock(self, seconds):
        """Move the sandbox's time forward: holds expire, refunds settle, retries fall due."""
        with self.lock:
            self.clock.offset += seconds
            before = self.stripe.event_count()
            expired = self.stripe.expire_authorizations(now=self.clock.now())
            settled = self.stripe.settle_refunds()
            self._settle_stripe_event_work(before, {"clock": self.clock.offset})
            result = {
                **self.clock_json(),
                "expired_payment_intents": [intent["id"] for intent in expired],
                "settled_refunds": [{"id": r["id"], "status": r["status"]} for r in settled],
            }
        self.deliveries.wake()
        return result

    def _settle_stripe_event_work(self, before, service=None):
        ids = peek(self.stripe._indexes, EVENT_INDEX, ())[before:]
        objects = self.stripe.objects
        added = self.deliveries.add(
            [(i, peek_value(objects, i)["type"]) for i in ids if dict.__contains__(objects, i)]
        )
        service = dict(service or {})
        if added:
            service["deliveries"] = [record.as_tuple() for record in added]
        self._commit(("stripe",), service or None)

    def settle_refunds(self):
        with self.lock:
            before = self.stripe.event_count()
            settled = self.stripe.settle_refunds()
            self._settle_stripe_event_work(before)
            return [{"id": r["id"], "status": r["status"]} for r in settled]

    def authenticate(self, intent_id, succeed):
        """The customer answers the 3-D Secure challenge of a PaymentIntent or SetupIntent."""
        with self.lock:
            found = (
                peek_value(self.stripe.objects, intent_id) if isinstance(intent_id, str) else None
            )
            kind = found.get("object") if found else None
            if kind not in ("payment_intent", "setup_intent"):
                raise ControlError(
                    404, "resource_missing", f"No such intent: {intent_id!r}", "intent"
                )
            before = self.stripe.event_count()
            complete = (
                self.stripe.complete_authentication
                if kind == "payment_intent"
                else self.stripe.complete_setup_authentication
            )
            try:
                settled = complete(intent_id, succeed=succeed)
            except ValueError as error:
                raise ControlError(400, "intent_unexpected_state", str(error), "intent") from None
            finally:
                self._settle_stripe_event_work(before)
            return json.loads(encode_json(settled))

    def intent(self, intent_id):
        """A copy of a PaymentIntent or SetupIntent as stored now, or None."""
        with self.lock:
            found = (
                peek_value(self.stripe.objects, intent_id) if isinstance(intent_id, str) else None
            )
            if not found or found.get("object") not in ("payment_intent", "setup_intent"):
                return None
            return json.loads(encode_json(found))

    def trigger(self, event_type):
        steps = TRIGGERS.get(event_type)
        if steps is None:
            raise ControlError(
                400,
                "unknown_trigger",
                f"No trigger for {event_type!r}; see GET /control/triggers.",
                "event",
            )
        headers = {"Authorization": f"Bearer {SANDBOX_KEY}"}
        with self.lock:
            before = self.stripe.event_count()
            ids, answers = {}, []
            for name, method, path, form in steps:
                if method == "SETTLE":
                    self.settle_refunds()
                    continue
                body = fill(form, ids).encode()
                answer = self.handle("stripe", method, fill(path, ids), "", body, headers)
                payload = json.loads(answer.body)
                answers.append({"step": name, "status": answer.status, "id": payload.get("id")})
                if answer.status >= 400 and answer.status != 402:
                    raise ControlError(
                        500, "trigger_failed", f"{event_type}: {name} answered {answer.status}"
                    )
                if "id" in payload:
                    ids[name] = payload["id"]
                elif "error" in payload:
                    for key in ("payment_intent", "charge"):
                        found = payload["error"].get(key)
                        if isinstance(found, dict):
                            ids[name] = found["id"]
                        elif isinstance(found, str):
                            ids[name] = found
            events = [
                {"id": e["id"], "type": e["type"]}
                for e in (
                    peek_value(self.stripe.objects, i)
                    for i in peek(self.stripe._indexes, EVENT_INDEX, ())[before:]
                )
            ]
        return {"trigger": event_type, "requests": answers, "events": events}

    def reset(self):
        """Empty every fake and the deliveries (the endpoint and its secret stay)."""
        with self.lock:
            self._reset_fakes()
            if self.journal is not None:
                self.journal.append(("reset",))
            self.version += 1

    def _reset_fakes(self):
        for fake in self.fakes.values():
            fake.reset()
        self.push.clock = self.clock.now
        self.clock.offset = 0.0
        self.deliveries.clear()
        for recorder in self.recorders.values():
            recorder.track()

    def replace_todos(self, todos):
        with self.lock:
            self.todos.todos = copy.deepcopy(todos)
            self._commit(("todos",))

    # ================================================================ reads
    def objects(self, object_type=None, query=None, limit=50):
        """Stripe objects, newest first: of one type, and/or matching an id or an email."""
        query = (query or "").strip()
        with self.lock:
            engine, objects = self.stripe, self.stripe.objects
            if query and dict.__contains__(objects, query):
                found = [peek_value(objects, query)]
            else:
                types = (
                    [object_type]
                    if object_type
                    else ["customer", "payment_intent", "charge", "refund"]
                )
                found = []
                lowered = query.lower()
                for name in types:
                    for object_id in reversed(peek(engine._indexes, (name, None, None), ())):
                        obj = peek_value(objects, object_id)
                        if obj is None:
                            continue
                        if lowered and not _matches(obj, lowered):
                            continue
                        found.append(obj)
                        if len(found) >= limit * len(types):
                            break
                found.sort(key=lambda o: o.get("created") or 0, reverse=True)
                found = found[:limit]
            return [json.loads(encode_json(_readable(engine, obj))) for obj in found]

    def events(self, limit=50, event_type=None, since=0, full=False):
        """Events, newest first, each with its delivery summary (`full`: the whole event)."""
        with self.lock:
            objects = self.stripe.objects
            index = peek(self.stripe._indexes, EVENT_INDEX, ())
            found = []
            for object_id in reversed(index[since:]):
                event = peek_value(objects, object_id)
                if event is None or (event_type and event["type"] != event_type):
                    continue
                found.append(self.event_json(object_id, full=full))
                if len(found) >= limit:
                    break
            return found

    def event_json(self, event_id, full=True):
        with self.lock:
            event = peek_value(self.stripe.objects, event_id)
            if event is None or event.get("object") != "event":
                return None
            record = self.deliveries.records.get(event_id)
            body = json.loads(self.event_payload(event_id)) if full else {
                "id": event["id"], "type": event["type"], "created": event["created"],
            }  # fmt: skip
            if not full:
                data = dict.get(self.stripe._snapshots, event_id)
                body["object_id"] = _object_id(event, data, type(self.stripe))
            body["delivery"] = record.as_json() if record else None
            return body


def _object_id(event, snapshot, engine_class):
    if event.get("data"):
        return event["data"]["object"].get("id")
    if snapshot:
        packed = snapshot[0]
        text = snapshot_text(packed, engine_class)
        start = text.find('"id":"')
        if start >= 0:
            return text[start + 6 : text.find('"', start + 6)]
    return None


def _matches(obj, lowered):
    if lowered in str(obj.get("id", "")).lower():
        return True
    for key in ("email", "receipt_email"):
        value = obj.get(key)
        if isinstance(value, str) and lowered in value.lower():
            return True
    details = obj.get("billing_details") or {}
    email = details.get("email") if isinstance(details, dict) else None
    return isinstance(email, str) and lowered in email.lower()


def _readable(engine, obj):
    """An object as the console shows it: a customer with its saved cards."""
    if obj.get("object") != "customer":
        return obj
    cards = []
    for object_id in peek(engine._indexes, ("payment_method", "customer", obj["id"]), ()):
        method = peek_value(engine.objects, object_id)
        if method is not None and method.get("customer") == obj["id"]:
            card = method.get("card") or {}
            cards.append(
                {"id": method["id"], "brand": card.get("brand"), "last4": card.get("last4"),
                 "exp_month": card.get("exp_month"), "exp_year": card.get("exp_year")}
            )  # fmt: skip
    return {**obj, "saved_cards": cards}


@contextlib.contextmanager
def running(service):
    """Close a service at the end of a block (tests)."""
    try:
        yield service
    finally:
        service.close()
