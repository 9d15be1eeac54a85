"""The fake Stripe's store: lists in O(limit) from per-resource indexes, small stored objects."""

import copy
import pickle
from unittest import mock

import stripe
from django.test import SimpleTestCase

from fakes.stripe.wire import FrozenDict
from payments.testing import FakeStripe, fake_stripe


class IndexedListTests(SimpleTestCase):
    def test_a_page_reads_only_limit_plus_one_objects_whatever_the_store_holds(self):
        engine = FakeStripe()
        with fake_stripe(engine):
            template = stripe.Charge.create(amount=500, currency="usd", source="tok_visa").to_dict()
            ids = []
            for index in range(5000):  # copies: what matters is the index, not the objects
                charge = {
                    **template,
                    "id": engine.new_id("ch"),
                    "created": template["created"] + index,
                }
                charge["customer"] = "cus_a" if index % 3 == 0 else None
                engine.store(charge)
                ids.append(charge["id"])
            middle = ids[2500]
            with mock.patch.object(
                FakeStripe, "_take", autospec=True, side_effect=FakeStripe._take
            ) as take:
                page = stripe.Charge.list(limit=10, starting_after=middle)
                self.assertLessEqual(take.call_count, 11)
                self.assertEqual([c.id for c in page.data], list(reversed(ids[2490:2500])))
                take.reset_mock()
                page = stripe.Charge.list(limit=10, customer="cus_a")  # its own index
                self.assertLessEqual(take.call_count, 11)
                self.assertTrue(all(c.customer == "cus_a" for c in page.data))
                take.reset_mock()
                newer = template["created"] + 4990
                page = stripe.Charge.list(limit=100, created={"gte": newer})
                self.assertLessEqual(take.call_count, 11)
                self.assertEqual(len(page.data), 10)
                self.assertFalse(page.has_more)

    def test_shared_sub_objects_refuse_changes_and_survive_copies(self):
        with fake_stripe() as engine:
            charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        stored = engine.get(charge.id)
        self.assertIsInstance(stored["outcome"], FrozenDict)
        with self.assertRaises(TypeError):
            stored["outcome"]["risk_level"] = "highest"
        again = pickle.loads(pickle.dumps(stored))
        self.assertEqual(again["outcome"], stored["outcome"])
        self.assertEqual(copy.deepcopy(stored)["billing_details"], stored["billing_details"])
