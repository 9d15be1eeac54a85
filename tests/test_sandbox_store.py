"""The sandbox's shared, durable state: several 'processes' on one SQLite file."""

import io
import tempfile
import threading
from pathlib import Path
from unittest import mock

import stripe
from django.core.management import call_command
from django.test import SimpleTestCase, TestCase, override_settings
from django.urls import reverse

from backend import sandbox, sandbox_store
from backend.sandbox_store import MemoryStore, SharedFake, SqliteStore
from notifications.testing import FakeTodoApi
from payments.testing import FakeStripe, FakeStripeHTTPClient, stripe_globals
from payments.testing.sandbox import SandboxStripe


class Worker:
    """What one server process holds: its own engine, its own store connection."""

    def __init__(self, path):
        self.engine = FakeStripe()
        self.store = SqliteStore(path)
        self.fake = SandboxStripe(self.engine, self.store)

    def client(self):
        return stripe_globals(
            default_http_client=FakeStripeHTTPClient(self.fake),
            api_key="sk_test_sandbox",
            max_network_retries=0,
        )


class SqliteStoreTests(SimpleTestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.path = Path(directory.name) / "sandbox-state.sqlite3"

    def test_a_charge_made_by_one_worker_is_refunded_by_another(self):
        first, second = Worker(self.path), Worker(self.path)
        with first.client():
            charge = stripe.Charge.create(amount=1000, currency="usd", source="tok_visa")
        with second.client():
            refund = stripe.Refund.create(charge=charge.id, amount=300)
            self.assertEqual(stripe.Charge.retrieve(charge.id).amount_refunded, 300)
        self.assertEqual(refund.status, "succeeded")
        with first.client():  # and the first sees the second's refund
            self.assertEqual(stripe.Charge.retrieve(charge.id).amount_refunded, 300)

    def test_idempotency_keys_hold_across_workers(self):
        first, second = Worker(self.path), Worker(self.path)
        with first.client():
            one = stripe.Charge.create(
                amount=500, currency="usd", source="tok_visa", idempotency_key="order-1"
            )
        with second.client():
            again = stripe.Charge.create(
                amount=500, currency="usd", source="tok_visa", idempotency_key="order-1"
            )
            with self.assertRaises(stripe.IdempotencyError):
                stripe.Charge.create(
                    amount=700, currency="usd", source="tok_visa", idempotency_key="order-1"
                )
        self.assertEqual(one.id, again.id)
        self.assertEqual(len(second.engine.charges), 1)

    def test_a_restarted_worker_finds_yesterdays_charge(self):
        with Worker(self.path).client():
            charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        with Worker(self.path).client():  # a new process: nothing in memory
            self.assertEqual(stripe.Refund.create(charge=charge.id).amount, 500)

    def test_state_is_reloaded_only_when_another_worker_changed_it(self):
        first, second = Worker(self.path), Worker(self.path)
        reload = SqliteStore._reload  # (self, connection, name, fake): args[3] is the fake
        with mock.patch.object(SqliteStore, "_reload", autospec=True, side_effect=reload) as load:
            with first.client():
                stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
                stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            self.assertEqual(load.call_count, 0)  # nobody else wrote: its memory is current
            with second.client():
                stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            self.assertEqual([call.args[3] for call in load.call_args_list], [second.engine])
            with first.client():
                stripe.Charge.list()
            self.assertEqual(load.call_args_list[-1].args[3], first.engine)
            self.assertEqual(load.call_count, 2)

    def test_reads_do_not_rewrite_the_state(self):
        worker = Worker(self.path)
        with worker.client():
            charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            before = worker.store.versions()
            stripe.Charge.retrieve(charge.id)
            stripe.Charge.list()
        self.assertEqual(worker.store.versions(), before)

    def test_concurrent_workers_lose_no_update(self):
        workers = [Worker(self.path) for _ in range(3)]
        errors = []

        def pay(worker):
            fake = worker.fake
            try:
                for _ in range(10):
                    answer = fake.handle(
                        "POST",
                        "/v1/charges",
                        "",
                        b"amount=500&currency=usd&source=tok_visa",
                        {"Authorization": "Bearer sk_test_sandbox"},
                    )
                    assert answer.status == 200, answer.body
            except Exception as error:
                errors.append(error)

        threads = [threading.Thread(target=pay, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(errors, [])
        final = Worker(self.path)
        self.assertEqual(len(final.fake.run(lambda: final.engine.charges)), 30)

    def test_a_failed_call_is_rolled_back_and_reloaded(self):
        worker = Worker(self.path)
        worker.fake.run(lambda: worker.engine.objects.__setitem__("x", {"object": "thing"}))

        def broken():
            worker.engine.objects["half"] = {"object": "thing"}
            raise RuntimeError("boom")

        with self.assertRaises(RuntimeError):
            worker.fake.run(broken)
        self.assertEqual(sorted(worker.fake.run(lambda: list(worker.engine.objects))), ["x"])

    def test_any_fake_is_stored_by_its_attributes(self):
        first = SharedFake(FakeTodoApi(), SqliteStore(self.path), "todos")
        first.run(lambda: first.fake.todos.clear())
        second = SharedFake(FakeTodoApi(), SqliteStore(self.path), "todos")
        answer = second.handle("GET", "/todos", "", b"", {})
        self.assertEqual(answer.body, b"[]")

    def test_a_secret_is_made_once_and_shared(self):
        one = SqliteStore(self.path).secret("s", sandbox_store.new_webhook_secret)
        two = SqliteStore(self.path).secret("s", sandbox_store.new_webhook_secret)
        self.assertEqual(one, two)
        self.assertTrue(one.startswith("whsec_"))


class SandboxCommandTests(SimpleTestCase):
    def test_reset_empties_the_state_for_every_worker(self):
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "state.sqlite3"
            worker = Worker(path)
            with worker.client():
                stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            out = io.StringIO()
            with override_settings(SANDBOX_STATE=str(path)):
                call_command("sandbox", "status", stdout=out)
                self.assertIn("stripe: 1 charges", out.getvalue())
                call_command("sandbox", "reset", stdout=out)
            self.assertIn("stripe: 0 charges", out.getvalue())
            self.assertEqual(worker.fake.run(lambda: worker.engine.charges), [])
            worker.store.close()

    def test_memory_state_cannot_be_reset_from_outside(self):
        from django.core.management import CommandError

        with override_settings(SANDBOX_STATE="memory"), self.assertRaises(CommandError):
            call_command("sandbox", "reset", stdout=io.StringIO())


class HealthTests(TestCase):
    def test_health_says_where_the_sandbox_state_lives(self):
        self.assertIsNone(self.client.get(reverse("health")).json()["sandbox_state"])
        with (
            mock.patch.object(sandbox, "active_fakes", return_value=["stripe"]),
            mock.patch.dict(sandbox._active, {"store": MemoryStore()}),
        ):
            body = self.client.get(reverse("health")).json()
        self.assertEqual(body["sandbox_state"], "memory")
