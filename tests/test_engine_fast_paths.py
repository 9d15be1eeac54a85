"""The engine's per-request shortcuts answer exactly as the plain path did."""

import json
from urllib.parse import parse_qsl

from django.test import SimpleTestCase

from fakes.stripe import FakeStripe
from fakes.stripe.events import PACK_EVERY
from fakes.stripe.routes import router
from fakes.stripe.wire import form_pairs

HEADERS = {"Authorization": "Bearer sk_test_fast"}
CHARGE = b"amount=500&currency=usd&source=tok_visa"


class FastPathTests(SimpleTestCase):
    def test_form_pairs_read_forms_as_parse_qsl_does(self):
        for raw in [
            "", "a=1", "a", "a=", "&&a=1&&b=2&", "a=b=c", "=x", "a+b=c+d", "%zz=1", "a=%ff",
            "card%5Bnumber%5D=4242+4242&x=%E2%82%AC", "k=%2B1", "metadata[note]=50%25+off",
        ]:  # fmt: skip
            self.assertEqual(form_pairs(raw), parse_qsl(raw, keep_blank_values=True), raw)

    def test_an_idempotent_answer_is_encoded_once_and_replayed_byte_for_byte(self):
        engine = FakeStripe()
        headers = {**HEADERS, "Idempotency-Key": "k-1"}
        first = engine.handle("POST", "/v1/charges", "", CHARGE, headers)
        again = engine.handle("POST", "/v1/charges", "", CHARGE, headers)
        self.assertEqual(first.body, again.body)
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        charge = json.loads(first.body)
        self.assertEqual(charge, engine.get(charge["id"]))  # the stored object, as encoded
        self.assertEqual(len(engine.charges), 1)

    def test_unread_snapshots_are_packed_in_batches_and_read_back_as_emitted(self):
        engine = FakeStripe()
        bodies = [
            json.loads(engine.handle("POST", "/v1/charges", "", CHARGE, HEADERS).body)
            for _ in range(PACK_EVERY + 5)
        ]
        kinds = [type(snapshot[0]) for snapshot in engine._snapshots.values()]
        self.assertEqual(kinds.count(bytes), PACK_EVERY)  # packed once PACK_EVERY were due
        self.assertEqual(kinds[-5:], [str] * 5)  # the newest still text
        events = [event for event in engine.events if event["type"] == "charge.succeeded"]
        self.assertEqual([event["data"]["object"] for event in events], bodies)
        self.assertEqual(engine._snapshots, {})  # read once: no snapshot left

    def test_literal_routes_are_remembered_and_ids_are_not(self):
        table = router()
        endpoint, ids = table.match("POST", "/v1/charges")
        self.assertEqual((endpoint.template, ids), ("/v1/charges", []))
        self.assertIs(table.match("POST", "/v1/charges")[0], endpoint)
        self.assertIn(("POST", "/v1/charges"), table._literal)
        found, ids = table.match("GET", "/v1/charges/ch_1")
        self.assertEqual((found.template, ids), ("/v1/charges/{charge}", ["ch_1"]))
        self.assertNotIn(("GET", "/v1/charges/ch_1"), table._literal)
        self.assertEqual(table.match("DELETE", "/v1/charges")[0], None)  # methods still checked
