"""The sandbox store keeps the fake Stripe in rows and writes only what a call changed."""

import pickle
import sqlite3
import tempfile
from pathlib import Path
from unittest import mock

import stripe
from django.test import SimpleTestCase

from backend.sandbox_store import CHUNK, SqliteStore, TrackedDict
from tests.test_sandbox_store import Worker as StoreWorker

HEADERS = {"Authorization": "Bearer sk_test_sandbox"}


class Worker(StoreWorker):
    def charge(self, amount=500):
        answer = self.fake.handle(
            "POST",
            "/v1/charges",
            "",
            f"amount={amount}&currency=usd&source=tok_visa".encode(),
            HEADERS,
        )
        assert answer.status == 200, answer.body
        return answer

    def state(self):
        """The engine's state as plain data, read inside a transaction (so it is current);
        not the request log, where a read's entry stays in the process that served it."""
        return self.fake.run(
            lambda: {
                name: dict(value) if isinstance(value, dict) else value
                for name, value in self.engine.dump_state().items()
                if name != "_requests"
            },
            write=False,
        )


class RowStoreTests(SimpleTestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.path = Path(directory.name) / "state.sqlite3"

    def rows_written_by_last_call(self):
        with sqlite3.connect(self.path) as db:
            [version] = db.execute(
                "SELECT version FROM fake_state WHERE name = 'stripe'"
            ).fetchone()
            return db.execute(
                "SELECT attr FROM fake_item WHERE name = 'stripe' AND version = ?", (version,)
            ).fetchall()

    def test_a_charge_writes_the_same_few_rows_however_many_are_stored(self):
        worker = Worker(self.path)
        counts = []
        for stored in (10, 3 * CHUNK):  # (no reads in between: a key read is a key saved)
            for _ in range(stored - len(counts) * 10):
                worker.charge()
            worker.charge()
            counts.append(len(self.rows_written_by_last_call()))
        # the charge, its event, snapshot and card, and the indexes it joined; a long index
        # (charges, events, events of a type) writes its head and its last part, not all
        self.assertLessEqual(counts[1], counts[0] + 3)
        self.assertLess(counts[1], 20)

    def test_another_workers_changes_and_deletions_are_reloaded(self):
        first, second = Worker(self.path), Worker(self.path)
        for _ in range(CHUNK + 5):  # the charge and event indexes span parts
            first.charge()
        with first.client():
            customer = stripe.Customer.create(email="a@example.com")
            product = stripe.Product.create(name="gone")
        with second.client():
            stripe.Customer.delete(customer.id)
            stripe.Product.delete(product.id)
            charge = stripe.Charge.create(amount=700, currency="usd", source="tok_visa")
        with first.client():
            # a deleted customer is retrieved as Stripe answers it, {id, object, deleted}
            # (docs.stripe.com/api/customers/retrieve); a deleted product is gone
            self.assertTrue(stripe.Customer.retrieve(customer.id).deleted)
            with self.assertRaises(stripe.InvalidRequestError):
                stripe.Product.retrieve(product.id)
            self.assertEqual(stripe.Charge.list(limit=1).data[0].id, charge.id)
            stripe.Refund.create(charge=charge.id, amount=200)
        with second.client():
            self.assertEqual(stripe.Charge.retrieve(charge.id).amount_refunded, 200)
        self.assertEqual(first.state(), second.state())
        self.assertEqual(first.state(), Worker(self.path).state())  # and a full load agrees
        self.assertEqual(len(first.state()["_indexes"]["charge", None, None]), CHUNK + 6)

    def test_a_reset_by_one_worker_empties_the_other(self):
        first, second = Worker(self.path), Worker(self.path)
        first.charge()
        second.charge()
        second.fake.reset()
        self.assertEqual(first.fake.run(lambda: first.engine.charges, write=False), [])
        first.charge()
        self.assertEqual(len(second.fake.run(lambda: second.engine.charges, write=False)), 1)

    def test_the_tracking_dict_notes_reads_and_writes_not_membership(self):
        values = TrackedDict({"a": 1, "b": 2})
        self.assertIn("a", values)
        self.assertEqual(values.touched, set())
        values.get("a")
        values["c"] = 3
        values.pop("b")
        self.assertEqual(values.touched, {"a", "b", "c"})
        self.assertIs(type(pickle.loads(pickle.dumps(values))), dict)

    def test_a_failed_save_is_rolled_back_and_the_state_reloaded_in_full(self):
        worker = Worker(self.path)
        worker.charge()
        saved = worker.state()
        with mock.patch.object(SqliteStore, "_rows", side_effect=OSError("disk full")):
            with self.assertRaises(OSError):
                worker.charge()
        self.assertEqual(worker.state(), saved)  # the unsaved charge is gone from memory too
        worker.charge()
        self.assertEqual(len(Worker(self.path).state()["_indexes"]["charge", None, None]), 2)
