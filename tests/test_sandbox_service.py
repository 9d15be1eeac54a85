"""The sandbox service (fakes.service): durable state, the control API, webhooks, triggers.

Each test runs a service in a thread of this process on a free loopback port and talks
to it over HTTP, as a backend or a person would. The backend side (settings, commands,
the journeys through gunicorn) is in test_sandbox.py and test_sandbox_journeys.py.
"""

import base64
import json
import logging
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from unittest import mock

import requests
import stripe
from django.test import SimpleTestCase

from fakes.service import SandboxService, start_service
from fakes.service.journal import StateLocked
from fakes.service.recorders import Packed, peek_value
from fakes.stripe import stripe_server
from fakes.stripe.wire import FrozenDict

SECRET = "whsec_service_tests"
KEY = "sk_test_service"


def card_token(number="4242424242424242"):
    return stripe.Token.create(
        card={"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    )


class ServiceTestCase(SimpleTestCase):
    def setUp(self):
        self.directory = Path(self.enterContext(tempfile.TemporaryDirectory()))
        self.http = requests.Session()
        self.addCleanup(self.http.close)
        self.running = None

    def start(self, state="state", **options):
        if self.running is not None:
            self.running.stop()
        path = None if state is None else str(self.directory / state)
        self.running = start_service(path, **options)
        self.addCleanup(self.running.stop)
        self.url = self.running.url
        self.service = self.running.service
        return self.running

    def stop(self):
        self.running.stop()
        self.running = None

    def stripe(self):
        return stripe_server(self.url + "/stripe", api_key=KEY)

    def control(self, method, path, body=None, expect=200, **kwargs):
        answer = self.http.request(
            method, f"{self.url}/control/{path}", json=body, timeout=10, **kwargs
        )
        self.assertEqual(answer.status_code, expect, answer.text)
        return answer.json()


class DurableStateTests(ServiceTestCase):
    def test_what_was_answered_is_there_after_a_restart(self):
        self.start()
        with self.stripe():
            customer = stripe.Customer.create(email="ada@example.com")
            stripe.PaymentMethod.attach("pm_card_visa", customer=customer.id)
            token = card_token().id
            charge = stripe.Charge.create(
                amount=700, currency="usd", source=token, idempotency_key="order-1"
            )
            refund = stripe.Refund.create(charge=charge.id, amount=200)
        requests.post(
            self.url + "/push/registerDevice",
            json={"request": {"application": "FAKE0-00000", "auth": "fake-push-auth-key",
                              "hwid": "phone-1", "push_token": "tok", "device_type": 1, "userId": "7"}},
            timeout=5,
        )  # fmt: skip
        self.control("PATCH", "todos/1", {"completed": True})
        self.stop()

        self.start()
        with self.stripe():
            again = stripe.Charge.create(
                amount=700, currency="usd", source=token, idempotency_key="order-1"
            )
            self.assertEqual(again.id, charge.id)  # the idempotent answer survived
            self.assertEqual(stripe.Charge.retrieve(charge.id).amount_refunded, 200)
            self.assertEqual(stripe.Refund.retrieve(refund.id).status, "succeeded")
            saved = stripe.Customer.list_payment_methods(customer.id)
            self.assertEqual(len(saved.data), 1)
            listed = stripe.Charge.list(limit=10)
            self.assertEqual([c.id for c in listed.data], [charge.id])
            more = stripe.Charge.create(amount=300, currency="usd", source="tok_visa")
            self.assertEqual(
                [c.id for c in stripe.Charge.list(limit=10).data], [more.id, charge.id]
            )
            # ids keep counting: nothing is reused after the restart
            self.assertGreater(int(more.id[-6:]), int(charge.id[-6:]))
        self.assertEqual(self.service.push.devices["phone-1"]["userId"], "7")
        self.assertTrue(self.service.todos.todos[0]["completed"])

    def test_shared_sub_objects_stay_shared_after_loading(self):
        self.start()
        with self.stripe():
            first = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            second = stripe.Charge.create(amount=600, currency="usd", source="tok_visa")
        self.stop()
        self.start()
        objects = self.service.stripe.objects
        a, b = peek_value(objects, first.id), peek_value(objects, second.id)
        self.assertIsInstance(a["outcome"], FrozenDict)
        self.assertIs(a["outcome"], b["outcome"])  # one copy, as before the restart

    def test_a_torn_last_record_is_cut_off_and_the_rest_loads(self):
        self.start()
        with self.stripe():
            charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.stop()
        [journal] = (self.directory / "state").glob("journal-*.log")
        with open(journal, "ab") as handle:
            handle.write(b"\x40\x00\x00\x00\x01\x02\x03\x04\x00half a record")  # killed mid-write
        with self.assertLogs("fakes.service.journal", "WARNING") as logs:
            self.start()
        self.assertIn("never acknowledged", logs.output[0])
        with self.stripe():
            self.assertEqual(stripe.Charge.retrieve(charge.id).amount, 500)
            stripe.Charge.create(amount=800, currency="usd", source="tok_visa")
        self.stop()
        self.start()  # the cut-off tail never comes back to haunt the next load
        self.assertEqual(len(self.service.stripe.charges), 2)

    def test_compaction_writes_a_snapshot_while_serving_and_drops_the_old_journal(self):
        self.start(compact_after=20_000)
        with self.stripe():
            ids = [
                stripe.Charge.create(amount=500 + n, currency="usd", source="tok_visa").id
                for n in range(40)
            ]
            self.service.wait_compaction()
            ids += [stripe.Charge.create(amount=900, currency="usd", source="tok_visa").id]
        self.service.wait_compaction()
        files = sorted(p.name for p in (self.directory / "state").iterdir())
        self.assertTrue(any(name.startswith("snapshot-") for name in files), files)
        self.assertNotIn("journal-0.log", files)
        self.stop()
        self.start()
        objects = self.service.stripe.objects
        self.assertIsInstance(dict.__getitem__(objects, ids[0]), Packed)  # not read yet
        with self.stripe():
            listed = stripe.Charge.list(limit=3)  # the indexes were rebuilt from the keys
            self.assertEqual([c.id for c in listed.data], ids[::-1][:3])
            stripe.Refund.create(charge=ids[0], amount=100)  # an old one, opened and changed
        self.assertEqual(sorted(c["id"] for c in self.service.stripe.charges), sorted(ids))
        self.service.wait_compaction()
        self.stop()
        self.start()
        with self.stripe():
            self.assertEqual(stripe.Charge.retrieve(ids[0]).amount_refunded, 100)
            self.assertEqual(len(stripe.Charge.list(limit=100).data), len(ids))

    def test_a_service_too_busy_to_let_the_writer_in_still_finishes_its_snapshot(self):
        """Each journaled change takes a step of the snapshot under the lock it already
        holds: the writing thread, shut out of the lock here for good (this thread holds
        it, as back-to-back requests do in effect), gets every record from the requests."""
        self.start()
        form = b"amount=500&currency=usd&source=tok_visa"
        headers = {"Authorization": f"Bearer {KEY}"}
        for _ in range(600):  # a few snapshot chunks' worth
            self.service.handle("stripe", "POST", "/v1/charges", "", form, headers)
        with self.service.lock:
            self.service._start_compaction()
            writes = 0
            while self.service._compacting is not None and writes < 5_000:
                self.service.handle("stripe", "POST", "/v1/charges", "", form, headers)
                writes += 1
                time.sleep(0.001)  # the writer writes what the requests encoded
            self.assertIsNone(self.service._compacting, "the snapshot never finished")
        self.assertLess(writes, 200)
        self.stop()
        self.start()
        self.assertEqual(len(self.service.stripe.charges), 600 + writes)

    def test_a_snapshot_that_fails_in_a_requests_step_fails_alone(self):
        """A step that fails inside a request fails the snapshot, never the request (an
        interrupt is not swallowed, though); the journal is kept, so nothing is lost, and a
        half-written snapshot is not taken for a whole one (an early reviewer's catch: a
        dead generator once looked like the end, and the snapshot lost every later chunk)."""
        form = b"amount=500&currency=usd&source=tok_visa"
        headers = {"Authorization": f"Bearer {KEY}"}
        for error in (MemoryError, KeyboardInterrupt):
            with self.subTest(error=error.__name__):
                self.start(state=error.__name__)
                state = self.directory / error.__name__
                for _ in range(300):
                    self.service.handle("stripe", "POST", "/v1/charges", "", form, headers)
                stored = len(self.service.stripe.charges)
                recorder, raised, calls = self.service.recorders["stripe"], [], []
                encode_chunk = recorder.snapshot_record

                def second_fails(*args, encode_chunk=encode_chunk, calls=calls, error=error):
                    calls.append(args[0])
                    if len(calls) == 2:
                        raise error
                    return encode_chunk(*args)

                failing = mock.patch.object(recorder, "snapshot_record", side_effect=second_fails)
                with failing, self.service.lock, self.assertLogs("fakes.service", "ERROR") as logs:
                    self.service._start_compaction()
                    for _ in range(50):  # the writer is shut out: these take every step
                        try:
                            answer = self.service.handle(
                                "stripe", "POST", "/v1/charges", "", form, headers
                            )
                        except BaseException as interrupt:
                            raised.append(type(interrupt))
                        else:
                            self.assertEqual(answer.status, 200)
                    self.service.wait_compaction(timeout=10)
                    self.assertIsNone(self.service._compacting)
                self.assertEqual(raised, [] if error is MemoryError else [KeyboardInterrupt])
                self.assertIn("failed (the journal is kept)", logs.output[0])
                self.assertEqual(sorted(p.suffix for p in state.iterdir()), ["", ".log", ".log"])
                expected = stored + 50  # (an interrupted request's charge was journaled first)
                self.running.service.close(snapshot=False)  # kill -9: no stop snapshot
                self.running.server.stop()
                self.running = None
                self.start(state=error.__name__)
                self.assertEqual(len(self.service.stripe.charges), expected)

    def test_an_event_read_while_a_snapshot_is_written_is_whole_after_kill_9(self):
        """Reading an event the first time fills in its data and drops its stored snapshot,
        two dicts a fuzzy snapshot may write either side of the read: that read is
        journaled, so the journal replayed over the snapshot makes the event whole (a
        reviewer's catch: it was not, and such an event answered 500 after a restart)."""
        self.start()
        headers = {"Authorization": f"Bearer {KEY}"}
        for _ in range(600):  # events in several snapshot chunks
            self.service.handle("stripe", "POST", "/v1/charges", "", b"amount=500&currency=usd&source=tok_visa", headers)  # fmt: skip
        objects = self.service.stripe.objects
        old = next(k for k in dict.keys(objects) if k.startswith("evt_"))
        self.assertIsNone(peek_value(objects, old)["data"])  # never read yet
        recorder, encoded = self.service.recorders["stripe"], []

        def noting(attr, keys, encode):
            encoded.append(attr)
            return snapshot_record(attr, keys, encode)

        snapshot_record = recorder.snapshot_record
        chunks = -(-len(dict.keys(objects)) // 256)
        with mock.patch.object(recorder, "snapshot_record", side_effect=noting):
            with self.service.lock:  # the steps taken here, in between: the read
                self.service._start_compaction()
                while encoded.count("objects") < chunks:
                    self.service._snapshot_step()
                read = self.service.handle("stripe", "GET", f"/v1/events/{old}", "", b"", headers)
                self.assertEqual(read.status, 200)
            self.service.wait_compaction()
        self.running.service.close(snapshot=False)  # kill -9: no stop snapshot
        self.running.server.stop()
        self.running = None
        self.start()
        again = self.service.handle("stripe", "GET", f"/v1/events/{old}", "", b"", headers)
        self.assertEqual(again.status, 200)
        self.assertEqual(json.loads(again.body)["data"], json.loads(read.body)["data"])
        self.assertEqual(json.loads(self.service.event_payload(old))["id"], old)

    def test_snapshots_come_further_apart_as_the_state_grows(self):
        """A snapshot writes everything stored, so one every 32 MiB of journal would cost
        each request more as the fakes fill: the next one waits for the journal to pass
        twice the last snapshot's size too (the benchmark's 100k-charge figure depends on it)."""
        self.start(compact_after=4_000)
        rotations = []  # (journal bytes, last snapshot's bytes) when each compaction began
        journal, begin = self.service.journal, self.service._start_compaction

        def recording():
            rotations.append((journal.bytes_written, journal.snapshot_bytes))
            begin()

        self.service._start_compaction = recording
        with self.stripe():
            for n in range(150):
                stripe.Charge.create(amount=500 + n, currency="usd", source="tok_visa")
                self.service.wait_compaction()
        self.assertGreaterEqual(len(rotations), 3, rotations)
        for written, snapshot in rotations:
            self.assertGreater(written, max(4_000, 2 * snapshot))
        self.assertGreater(rotations[-1][1], 2 * 4_000)  # the snapshot outgrew the floor...
        self.assertGreater(rotations[-1][0], 2 * rotations[0][0])  # ...and spaced them out

    def test_one_writer_only(self):
        self.start()
        with self.assertRaisesMessage(StateLocked, "one writer"):
            SandboxService(str(self.directory / "state"))

    def test_a_reset_is_kept_too(self):
        self.start()
        with self.stripe():
            stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.control("POST", "reset")
        with self.stripe():
            kept = stripe.Charge.create(amount=600, currency="usd", source="tok_visa")
        self.stop()
        self.start()
        self.assertEqual([c["id"] for c in self.service.stripe.charges], [kept.id])

    def test_reads_are_not_journaled(self):
        self.start()
        with self.stripe():
            charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            records = self.service.journal.records_written
            stripe.Event.list(limit=3)  # the first read of an event opens it: journaled once
            opened = self.service.journal.records_written
            for _ in range(5):
                stripe.Charge.retrieve(charge.id)
                stripe.Event.list(limit=3)
        self.assertEqual(opened, records + 1)
        self.assertEqual(self.service.journal.records_written, opened)

    def test_memory_state_keeps_nothing_on_disk(self):
        self.start(state=None)
        self.assertIsNone(self.service.journal)
        self.assertEqual(self.control("GET", "status")["state"], "memory")


class ControlApiTests(ServiceTestCase):
    def setUp(self):
        super().setUp()
        self.start(state=None)

    def test_a_fault_is_seen_by_every_client_until_used_up_or_cleared(self):
        faults = self.control(
            "POST", "faults", {"service": "stripe", "method": "POST", "path": "/v1/charges",
                               "kind": "5xx", "times": 2}, expect=201,
        )["data"]  # fmt: skip
        self.assertEqual([f["kind"] for f in faults], ["api_error", "api_error"])
        with self.stripe():
            with self.assertRaises(stripe.APIError):
                stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            stripe.Customer.create()  # another endpoint: not struck
            self.control("POST", "faults/clear", {})
            self.assertEqual(self.control("GET", "faults")["data"], [])
            stripe.Charge.create(amount=500, currency="usd", source="tok_visa")

    def test_bodies_nested_thousands_deep_or_too_big_are_refused_not_500s(self):
        deep = "[" * 5000 + "]" * 5000
        headers = {"Content-Type": "application/json"}
        answer = self.http.post(self.url + "/control/faults", data=deep, headers=headers)
        self.assertEqual((answer.status_code, answer.json()["error"]["code"]), (400, "parse_error"))
        big = json.dumps({"padding": "x" * 100_000})
        answer = self.http.post(self.url + "/control/faults", data=big, headers=headers)
        self.assertEqual(answer.status_code, 413)
        self.assertEqual(answer.json()["error"]["code"], "payload_too_large")
        pushed = self.http.post(self.url + "/push/registerDevice", data=deep, headers=headers)
        self.assertEqual(pushed.status_code, 400)
        form = "amount=500&currency=usd&source=tok_visa&metadata" + "[a]" * 3000 + "=b"
        charged = self.http.post(
            self.url + "/stripe/v1/charges",
            data=form,
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        self.assertEqual(charged.status_code, 400, charged.text[:200])
        self.assertEqual(charged.json()["error"]["type"], "invalid_request_error")
        self.assertEqual(self.service.status()["stripe"]["charge"], 0)

    def test_every_kind_the_fakes_know(self):
        outcomes = {}
        for kind in ("5xx", "429", "timeout", "reset", "lost"):
            self.control("POST", "faults", {"service": "stripe", "method": "POST",
                                            "path": "/v1/customers", "kind": kind}, expect=201)  # fmt: skip
            with self.stripe():
                try:
                    stripe.Customer.create()
                    outcomes[kind] = "answered"
                except stripe.StripeError as error:
                    outcomes[kind] = type(error).__name__
        self.assertEqual(
            outcomes,
            {"5xx": "APIError", "429": "RateLimitError", "timeout": "APIConnectionError",
             "reset": "APIConnectionError", "lost": "APIConnectionError"},
        )  # fmt: skip
        self.assertEqual(len(self.service.stripe.all("customer")), 1)  # the lost one was made

    def test_a_slow_answer_comes_late_but_is_performed(self):
        self.control("POST", "faults", {"service": "push", "method": "POST", "path": "/createMessage",
                                        "kind": "slow", "delay": 1.0}, expect=201)  # fmt: skip
        body = {"request": {"application": "FAKE0-00000", "auth": "fake-push-auth-key",
                            "notifications": [{"content": "hi"}]}}  # fmt: skip
        with self.assertRaises(requests.ReadTimeout):
            requests.post(self.url + "/push/createMessage", json=body, timeout=0.3)
        self.assertEqual(len(self.service.push.outbox), 1)
        [call] = self.control("GET", "calls?service=push")["data"]
        self.assertEqual(call["outcome"], "slow_response 200")  # (it was logged as a plain 200)

    def test_after_lets_calls_through_first(self):
        self.control("POST", "faults", {"service": "stripe", "method": "POST", "path": "/v1/customers",
                                        "kind": "api_error", "after": 1}, expect=201)  # fmt: skip
        with self.stripe(), stripe_server(self.url + "/stripe", api_key=KEY):
            stripe.Customer.create()
            with self.assertRaises(stripe.APIError):
                stripe.Customer.create()

    def test_refused_calls_change_nothing(self):
        before = self.control("GET", "status")
        for body, code in (
            ({"service": "bank", "method": "POST", "path": "/x", "kind": "5xx"}, "invalid_service"),
            (
                {"service": "stripe", "method": "POST", "path": "/x", "kind": "boom"},
                "invalid_fault_kind",
            ),
            (
                {"service": "stripe", "method": "FETCH", "path": "/x", "kind": "5xx"},
                "invalid_method",
            ),
            ({"service": "stripe", "method": "POST", "path": "x", "kind": "5xx"}, "invalid_path"),
            (
                {"service": "stripe", "method": "POST", "path": "/x", "kind": "5xx", "times": 0},
                "invalid_integer",
            ),
            (
                {"service": "stripe", "method": "POST", "path": "/x", "kind": "5xx", "times": True},
                "invalid_integer",
            ),
            ({"service": "stripe"}, "parameter_missing"),
        ):
            with self.subTest(body):
                error = self.control("POST", "faults", body, expect=400)["error"]
                self.assertEqual(error["code"], code)
        for duration in ("soon", "0", "-5", "400d", True, "2h30"):
            with self.subTest(duration):
                self.control("POST", "clock/advance", {"duration": duration}, expect=400)
        refused = self.control("POST", "clock/advance", {"seconds": "abc"}, expect=400)
        self.assertEqual(refused["error"]["param"], "seconds")  # the one given
        self.assertEqual(
            self.control("POST", "trigger", {"event": "nope"}, expect=400)["error"]["code"],
            "unknown_trigger",
        )
        self.control("PUT", "todos", [{"id": "1"}], expect=400)
        not_json = self.http.post(self.url + "/control/reset", data="{}", timeout=5,
                                  headers={"Content-Type": "text/plain"})  # fmt: skip
        self.assertEqual(not_json.status_code, 415)  # a cross-site form cannot reset it
        broken = self.http.post(self.url + "/control/faults", data="{", timeout=5,
                                headers={"Content-Type": "application/json"})  # fmt: skip
        self.assertEqual(broken.json()["error"]["code"], "parse_error")
        self.assertEqual(self.http.get(self.url + "/control/nope", timeout=5).status_code, 404)
        self.assertEqual(self.http.get(self.url + "/control/reset", timeout=5).status_code, 405)
        after = self.control("GET", "status")
        self.assertEqual(
            {k: after[k] for k in ("stripe", "faults", "clock", "todos")}["faults"],
            before["faults"],
        )
        self.assertEqual(after["clock"]["offset_seconds"], 0)
        self.assertEqual(after["version"], before["version"])

    def test_the_clock_expires_holds_and_settles_refunds(self):
        with self.stripe():
            hold = stripe.PaymentIntent.create(
                amount=900, currency="usd", payment_method="pm_card_visa", confirm=True,
                capture_method="manual",
            )  # fmt: skip
            charge = stripe.Charge.create(
                amount=500, currency="usd", source=card_token("4000000000007726").id
            )
            refund = stripe.Refund.create(charge=charge.id)
            self.assertEqual(refund.status, "pending")
            moved = self.control("POST", "clock/advance", {"duration": "1h"})
            self.assertEqual(moved["expired_payment_intents"], [])
            self.assertEqual(moved["settled_refunds"], [{"id": refund.id, "status": "succeeded"}])
            moved = self.control("POST", "clock/advance", {"duration": "7d"})
            self.assertEqual(moved["expired_payment_intents"], [hold.id])
            self.assertEqual(stripe.PaymentIntent.retrieve(hold.id).status, "canceled")

            # what is made after a move is stamped with the sandbox's time, so a hold placed
            # now lasts its 7 days from now (it was stamped with the machine's, and the next
            # move, however short, expired it)
            later = stripe.PaymentIntent.create(
                amount=900, currency="usd", payment_method="pm_card_visa", confirm=True,
                capture_method="manual",
            )  # fmt: skip
            self.assertGreaterEqual(later.created, time.time() + 3600 + 7 * 86400 - 5)
            self.assertEqual(self.control("POST", "clock/advance", {"duration": "90s"})["expired_payment_intents"], [])  # fmt: skip
            moved = self.control("POST", "clock/advance", {"duration": "7d"})
            self.assertEqual(moved["expired_payment_intents"], [later.id])
        self.assertEqual(self.control("GET", "clock")["offset_seconds"], 3600 + 14 * 86400 + 90)

    def test_trigger_makes_the_event_it_names(self):
        for event in self.control("GET", "triggers")["data"]:
            with self.subTest(event):
                made = self.control("POST", "trigger", {"event": event}, expect=201)
                self.assertIn(event, [e["type"] for e in made["events"]])

    def test_search_by_id_and_email(self):
        with self.stripe():
            ada = stripe.Customer.create(email="ada@example.com")
            stripe.Customer.create(email="bob@example.com")
            intent = stripe.PaymentIntent.create(
                amount=500, currency="usd", receipt_email="ada@example.com"
            )
        found = self.control("GET", "stripe/objects?q=ADA@example")["data"]
        self.assertEqual({o["id"] for o in found}, {ada.id, intent.id})
        self.assertEqual(
            self.control("GET", f"stripe/objects?q={intent.id}")["data"][0]["id"], intent.id
        )
        self.control("GET", "stripe/objects/cus_nope", expect=404)

    def test_a_password_guards_the_control_api_and_the_console_not_the_providers(self):
        self.start(state=None, console_password="s3cret-pass")
        self.assertEqual(self.http.get(self.url + "/control/status", timeout=5).status_code, 401)
        self.assertEqual(self.http.get(self.url + "/console/", timeout=5).status_code, 401)
        basic = base64.b64encode(b"anyone:s3cret-pass").decode()
        self.control("GET", "status", headers={"Authorization": f"Basic {basic}"})
        self.control("GET", "status", headers={"Authorization": "Bearer s3cret-pass"})
        self.control("GET", "status", headers={"Authorization": "Bearer wrong"}, expect=401)
        with self.stripe():
            stripe.Customer.create()  # the API itself answers its keys, as Stripe's does


class WebhookTests(ServiceTestCase):
    def setUp(self):
        super().setUp()
        self.received, self.answers = [], []
        self.lock = threading.Lock()

    def target(self, url, payload, signature):
        event = stripe.Webhook.construct_event(payload, signature, SECRET)  # signed as Stripe signs
        with self.lock:
            self.received.append(event["id"])
            answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer, '{"received": true}'

    def start_forwarding(self, state="state", **options):
        options.setdefault("retry_delays", (0.05, 0.05))
        return self.start(
            state, forward_to="http://127.0.0.1:9/hook", webhook_secret=SECRET,
            webhook_target=self.target, **options,
        )  # fmt: skip

    def wait(self):
        self.assertTrue(self.service.deliveries.wait_idle(10))

    def wait_received(self, count, seconds=5):
        deadline = time.monotonic() + seconds
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def make_an_event_whose_first_delivery_fails(self):
        self.answers = [500]
        with self.assertLogs("fakes.service.webhooks", "WARNING"), self.stripe():
            stripe.Customer.create()
            self.wait_received(1)
            self.wait()  # the attempt recorded (and its warning logged)

    def assert_the_event_delivered(self, attempts):
        [event] = self.control("GET", "events")["data"]
        self.assertEqual(event["delivery"]["status"], "delivered")
        self.assertEqual(len(event["delivery"]["attempts"]), attempts)

    def test_events_are_delivered_signed_and_every_attempt_is_recorded(self):
        self.start_forwarding()
        self.answers = [500, ConnectionError("down")]
        with self.assertLogs("fakes.service.webhooks", "WARNING"), self.stripe():
            customer = stripe.Customer.create(email="a@example.com")
            self.wait_received(3, seconds=10)
        self.wait()
        [event] = self.control("GET", "events")["data"]
        self.assertEqual(event["type"], "customer.created")
        self.assertEqual(event["object_id"], customer.id)
        attempts = event["delivery"]["attempts"]
        self.assertEqual([a["status"] for a in attempts], [500, None, 200])
        self.assertIn("ConnectionError", attempts[1]["error"])
        self.assertEqual(event["delivery"]["status"], "delivered")
        self.assertEqual(self.received, [event["id"]] * 3)
        self.assertEqual(self.service.stripe.get(event["id"])["pending_webhooks"], 0)

    def test_a_delivery_is_given_up_after_stripes_retries_and_can_be_resent(self):
        self.start_forwarding()
        self.answers = [503, 503, 503]
        with self.assertLogs("fakes.service.webhooks", "WARNING") as logs, self.stripe():
            stripe.Customer.create()
            deadline = time.monotonic() + 10
            while self.service.deliveries.counts["failed"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
        self.assertIn("giving up after 3 attempts", "\n".join(logs.output))
        [event] = self.control("GET", "events")["data"]
        self.assertEqual(event["delivery"]["status"], "failed")
        resent = self.control("POST", f"events/{event['id']}/redeliver", {}, expect=202)
        self.assertEqual(resent["event"], event["id"])
        self.wait()
        delivery = self.control("GET", f"events/{event['id']}")["delivery"]
        self.assertEqual(delivery["status"], "delivered")
        self.assertEqual([a["manual"] for a in delivery["attempts"]], [False, False, False, True])

    def test_retries_wait_for_the_sandbox_clock(self):
        self.start_forwarding(retry_delays=(3600,))
        self.make_an_event_whose_first_delivery_fails()
        time.sleep(0.2)
        self.assertEqual(len(self.received), 1)  # the retry is an hour away
        self.control("POST", "clock/advance", {"duration": "1h"})
        self.wait_received(2)
        self.assertEqual(len(self.received), 2)

    def test_pending_deliveries_go_on_after_a_restart(self):
        self.start_forwarding(retry_delays=(0.2,))
        self.make_an_event_whose_first_delivery_fails()
        self.stop()  # before the retry
        self.start_forwarding(retry_delays=(0.2,))
        self.wait_received(2)
        self.wait()
        self.assert_the_event_delivered(attempts=2)

    def test_pending_deliveries_can_all_fall_due_now(self):
        """What `sandbox serve` asks once the backend answers: the next retry (an hour away
        here, as in Stripe's schedule) is not waited for."""
        self.start_forwarding(retry_delays=(3600, 3600))
        self.make_an_event_whose_first_delivery_fails()
        [event] = self.control("GET", "events")["data"]
        self.assertEqual(event["delivery"]["status"], "pending")
        self.assertEqual(self.control("POST", "webhook/retry-pending"), {"retried": 1})
        self.wait_received(2)
        self.wait()
        self.assert_the_event_delivered(attempts=2)
        self.assertEqual(self.control("POST", "webhook/retry-pending"), {"retried": 0})

    def test_the_secret_is_kept_with_the_state(self):
        self.start()
        secret = self.control("GET", "webhook")["secret"]
        self.assertTrue(secret.startswith("whsec_"))
        self.stop()
        self.start()
        self.assertEqual(self.control("GET", "webhook")["secret"], secret)

    def test_the_payload_is_the_event_as_the_api_answers_it(self):
        self.start_forwarding(state=None)
        with self.stripe():
            charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            refund = stripe.Refund.create(charge=charge.id, amount=100)
        self.wait()
        engine = self.service.stripe
        for event_id in [e["id"] for e in self.control("GET", "events")["data"]]:
            with self.subTest(event_id):
                sent = json.loads(self.service.event_payload(event_id))
                self.assertIsNone(
                    dict.__getitem__(engine.objects, event_id)["data"]
                )  # still packed
                self.assertEqual(sent, json.loads(json.dumps(engine.get(event_id))))
        self.assertTrue(refund.id)


class ThreeDSecurePageTests(ServiceTestCase):
    def setUp(self):
        super().setUp()
        self.start(state=None)

    def intent(self, return_url=None, confirm_kwargs=None):
        with self.stripe():
            options = {"return_url": return_url} if return_url else {}
            return stripe.PaymentIntent.create(
                amount=900, currency="usd", payment_method="pm_card_threeDSecure2Required",
                confirm=True, **options,
            )  # fmt: skip

    def test_with_a_web_return_url_the_page_sends_the_browser_back(self):
        intent = self.intent("https://shop.example/back?order=7")
        page_url = intent.next_action.redirect_to_url.url
        self.assertTrue(page_url.startswith(f"{self.url}/sandbox/3ds/{intent.id}/"))
        page = requests.get(page_url, timeout=5)
        self.assertIn("Complete authentication", page.text)
        self.assertIn("9.00 USD", page.text)
        back = requests.post(
            page_url, data={"action": "complete"}, allow_redirects=False, timeout=5
        )
        self.assertEqual(back.status_code, 302)
        self.assertTrue(back.headers["Location"].startswith("https://shop.example/back?order=7&"))
        self.assertIn("redirect_status=succeeded", back.headers["Location"])
        self.assertEqual(self.service.intent(intent.id)["status"], "succeeded")

    def test_with_an_app_scheme_the_page_says_it_is_done(self):
        intent = self.intent("myapp://paid")
        page = requests.post(
            intent.next_action.redirect_to_url.url, data={"action": "complete"},
            allow_redirects=False, timeout=5,
        )  # fmt: skip
        self.assertEqual(page.status_code, 200)
        self.assertIn('id="outcome">Authentication completed.', page.text)
        self.assertIn('id="status">succeeded<', page.text)  # not the old requires_action
        self.assertIn("Back to the app", page.text)
        self.assertIn(f"myapp://paid?payment_intent={intent.id}", page.text)
        self.assertNotIn('id="complete"', page.text)

    def test_no_answer_settles_nothing_and_a_stale_link_says_so(self):
        intent = self.intent()
        url = f"{self.url}/sandbox/3ds/{intent.id}/"
        for data in ({}, {"action": ""}, {"action": "maybe"}):
            with self.subTest(data):
                page = requests.post(url, data=data, timeout=5)
                self.assertEqual(page.status_code, 400)
                self.assertIn("Choose Complete or Fail authentication", page.text)
                self.assertEqual(self.service.intent(intent.id)["status"], "requires_action")
        failed = requests.post(url, data={"action": "fail"}, timeout=5)
        self.assertIn("Authentication failed.", failed.text)
        again = requests.post(url, data={"action": "complete"}, timeout=5)
        self.assertEqual(again.status_code, 409)
        stale = requests.get(f"{self.url}/sandbox/3ds/pi_nope/", timeout=5)
        self.assertEqual(stale.status_code, 404)
        for text in (
            "pi_nope",
            "stale or mistyped",
            "sandbox may have been reset",
            "Start the payment again",
        ):
            self.assertIn(text, stale.text)
        hostile = requests.get(f"{self.url}/sandbox/3ds/%3Cscript%3E/", timeout=5)
        self.assertNotIn("<script>", hostile.text)

    def test_the_control_api_answers_the_challenge_too(self):
        intent = self.intent()
        self.control("POST", f"3ds/{intent.id}", {"result": "maybe"}, expect=400)
        done = self.control("POST", f"3ds/{intent.id}", {"result": "succeed"})
        self.assertEqual(done, {"id": intent.id, "object": "payment_intent", "status": "succeeded"})
        early = self.control("POST", f"3ds/{intent.id}", {"result": "succeed"}, expect=400)
        self.assertEqual(early["error"]["code"], "intent_unexpected_state")


class ConsoleTests(ServiceTestCase):
    def setUp(self):
        super().setUp()
        self.start(state=None)

    def page(self, path):
        answer = self.http.get(self.url + path, timeout=5)
        self.assertEqual(answer.status_code, 200, answer.text[:300])
        return answer.text

    def test_the_pages_show_what_the_sandbox_holds(self):
        with self.stripe():
            customer = stripe.Customer.create(email="ada@example.com")
            stripe.PaymentMethod.attach("pm_card_visa", customer=customer.id)
            charge = stripe.Charge.create(amount=1234, currency="usd", source="tok_visa")
        self.service.handle(
            "push", "POST", "/registerDevice", "",
            json.dumps({"request": {"application": "FAKE0-00000", "auth": "fake-push-auth-key",
                                    "hwid": "phone-9", "push_token": "t", "device_type": 3,
                                    "userId": "42"}}).encode(), {},
        )  # fmt: skip
        self.service.handle(
            "push", "POST", "/createMessage", "",
            json.dumps({"request": {"application": "FAKE0-00000", "auth": "fake-push-auth-key",
                                    "notifications": [{"content": "You have 3 unfinished todos",
                                                       "conditions": [["UserID", "EQ", "42"]]}]}}).encode(), {},
        )  # fmt: skip
        overview = self.page("/console/")
        self.assertIn("Sandbox console", overview)
        self.assertIn('src="/console/static/console.js"', overview)
        self.assertNotIn("http://", overview.split("<main")[0].replace(self.url, ""))  # no CDN
        stripe_page = self.page("/console/stripe")
        self.assertIn(charge.id, stripe_page)
        self.assertIn("12.34 USD", stripe_page)
        found = self.page("/console/stripe?q=ada@example")
        self.assertIn(customer.id, found)
        self.assertIn("1 saved card", found)
        self.assertNotIn(charge.id, found)
        self.assertIn(charge.id, self.page(f"/console/stripe/{charge.id}"))
        self.assertIn("charge.succeeded", self.page("/console/events"))
        push = self.page("/console/push")
        self.assertIn("phone-9", push)
        self.assertIn("You have 3 unfinished todos", push)
        self.assertIn("todo number 1", self.page("/console/todos"))
        self.assertEqual(
            self.http.get(self.url + "/", allow_redirects=False, timeout=5).headers["Location"],
            "/console/",
        )
        script = self.http.get(self.url + "/console/static/console.js", timeout=5)
        self.assertEqual(script.headers["Content-Type"], "text/javascript; charset=utf-8")
        self.assertIn("/control/version", script.text)
        self.assertEqual(
            self.http.get(self.url + "/console/static/../app.py", timeout=5).status_code, 404
        )

    def test_older_events_are_listed_with_their_objects_too(self):
        """Past the newest 128 (fakes.stripe.events.PACK_EVERY) an event's snapshot is kept
        compressed: the lists and the page read its object from there (a reviewer's catch:
        both answered 500 once there were more, with no webhook endpoint to read them)."""
        headers = {"Authorization": f"Bearer {KEY}"}
        form = b"amount=500&currency=usd&source=tok_visa"
        charges = []
        for _ in range(140):
            answer = self.service.handle("stripe", "POST", "/v1/charges", "", form, headers)
            charges.append(json.loads(answer.body)["id"])
        listed = self.control("GET", "events?limit=200")["data"]
        self.assertEqual([e["object_id"] for e in listed], charges[::-1])
        oldest = self.control("GET", f"events/{listed[-1]['id']}")
        self.assertEqual(oldest["data"]["object"]["id"], charges[0])
        self.assertIn(charges[-1], self.page("/console/events"))

    def test_what_it_shows_is_escaped(self):
        with self.stripe():
            stripe.Customer.create(email="<script>x</script>@example.com")
        self.assertNotIn("<script>x", self.page("/console/stripe"))

    def test_the_fragment_is_the_main_part_only(self):
        answer = self.http.get(
            self.url + "/console/events", headers={"X-Console-Fragment": "1"}, timeout=5
        )
        self.assertTrue(answer.text.startswith("<h1>Events</h1>"))


class ProcessTests(ServiceTestCase):
    """`python -m fakes.service` as its own process, as `sandbox serve` and `make run` run it."""

    def test_sigterm_stops_it_cleanly_with_a_snapshot_and_an_empty_journal(self):
        state = self.directory / "state"
        process = subprocess.Popen(
            [sys.executable, "-m", "fakes.service", "--port", "0", "--state", str(state)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(process.kill)
        first = process.stdout.readline()  # "Sandbox service on http://127.0.0.1:P (...)"
        self.assertIn("Sandbox service on http://127.0.0.1:", first)
        self.url = first.split()[3]
        with self.stripe():
            charge = stripe.Charge.create(amount=700, currency="usd", source="tok_visa")

        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
        # uvicorn raises a caught SIGTERM again once it has stopped serving: without a
        # handler of ours that ended the process there, before the snapshot was written
        self.assertEqual(process.returncode, 0, err)
        self.assertEqual([p.stat().st_size for p in state.glob("journal-*.log")], [0])
        self.assertEqual(len(list(state.glob("snapshot-*.bin"))), 1)
        loaded = SandboxService(str(state))
        self.addCleanup(loaded.close, snapshot=False)
        self.assertEqual(loaded.status()["stripe"]["charge"], 1)
        self.assertEqual(loaded.stripe.get(charge.id)["amount"], 700)


class BindingTests(SimpleTestCase):
    def test_beyond_loopback_needs_a_password(self):
        import io
        from contextlib import redirect_stderr

        from fakes.service import main

        err = io.StringIO()
        with redirect_stderr(err):
            code = main(["--bind", "0.0.0.0", "--port", "0"])
        self.assertEqual(code, 2)
        self.assertIn("--console-password", err.getvalue())


logging.getLogger("fakes.service").addHandler(logging.NullHandler())
