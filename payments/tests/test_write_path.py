"""The payment write path: one row written pending before Stripe, one settle write after,
and no transaction open while Stripe is called."""

from unittest import mock

import stripe
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APITestCase

from payments.models import Payment
from payments.testing import FakeStripeMixin
from payments.testing.webhooks import post_signed_event

User = get_user_model()
CARD = {"exp_month": 12, "exp_year": 2034, "cvc": "123", "amount": 500}
TABLE = Payment._meta.db_table


def payment_writes(queries):
    """The INSERTs and UPDATEs of payment rows, in order."""
    found = []
    for query in queries.captured_queries:
        sql = query["sql"]
        verb = sql.split(None, 1)[0].upper()
        if verb in ("INSERT", "UPDATE", "DELETE") and TABLE in sql.split("(", 1)[0]:
            found.append(verb)
    return found


class WritePathTests(FakeStripeMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("writer")
        self.client.force_authenticate(self.user)
        self.seen_by_stripe = []  # (path, rows and their statuses, open atomic blocks)
        handle = self.stripe.handle

        def watching(method, path, query, body, headers):
            rows = list(Payment.objects.values_list("status", flat=True))
            self.seen_by_stripe.append((path, rows, len(connection.atomic_blocks)))
            return handle(method, path, query, body, headers)

        self.enterContext(mock.patch.object(self.stripe, "handle", watching))
        self.depth = len(connection.atomic_blocks)  # the test case's own transactions

    def pay(self, data, key=None):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        with CaptureQueriesContext(connection) as queries:
            response = self.client.post(reverse("payments"), data, format="json", **headers)
        return response, payment_writes(queries)

    def assert_pending_before_stripe_and_no_transaction_open(self):
        self.assertTrue(self.seen_by_stripe)
        for path, rows, depth in self.seen_by_stripe:
            self.assertEqual(rows, ["pending"], path)
            self.assertEqual(depth, self.depth, f"a transaction was open during {path}")

    def test_each_outcome_is_one_insert_then_one_update(self):
        cases = [
            ({"number": "4242424242424242", **CARD}, None, 201, "succeeded"),
            ({"number": "4242424242424242", **CARD}, "key-1", 201, "succeeded"),
            ({"number": "4000000000009995", **CARD}, None, 400, "failed"),
            ({"number": "4000000000000069", **CARD}, "key-2", 400, "failed"),
            ({"token": "tok_visa", "amount": 500}, None, 201, "succeeded"),
            ({"token": "tok_nope", "amount": 500}, None, 400, "failed"),
            ({"payment_method": "pm_card_visa", "amount": 500}, None, 201, "succeeded"),
            (
                {"payment_method": "pm_card_threeDSecure2Required", "amount": 500},
                None,
                202,
                "requires_action",
            ),
        ]
        for data, key, status, outcome in cases:
            with self.subTest(data=data, key=key):
                Payment.objects.all().delete()
                self.seen_by_stripe.clear()
                response, writes = self.pay(data, key)
                self.assertEqual(response.status_code, status, response.content)
                self.assertEqual(writes, ["INSERT", "UPDATE"])
                self.assert_pending_before_stripe_and_no_transaction_open()
                payment = Payment.objects.get()
                self.assertEqual(payment.status, outcome)
                self.assertIsNone(payment.locked_until)
                self.assertEqual(payment.response_status, status)

    def test_the_settle_write_stores_what_the_answer_shows(self):
        response, _ = self.pay({"number": "4242424242424242", **CARD}, "same")
        payment = Payment.objects.get()
        body = response.json()
        self.assertEqual(payment.response_body, body)
        self.assertTrue(payment.stripe_token_id.startswith("tok_"))
        self.assertEqual(payment.stripe_charge_id, body["stripe_charge_id"])
        self.assertEqual(payment.updated_at.isoformat().replace("+00:00", "Z"), body["updated_at"])
        self.assertEqual((payment.card_brand, payment.card_last4), ("visa", "4242"))

    def test_a_replay_changes_nothing_and_calls_nobody(self):
        self.pay({"number": "4242424242424242", **CARD}, "again")
        before = Payment.objects.values().get()
        self.seen_by_stripe.clear()
        response, writes = self.pay({"number": "4242424242424242", **CARD}, "again")
        self.assertEqual(response["Idempotent-Replayed"], "true")
        # The claim tries its INSERT first; the unique key refuses it, and nothing else runs.
        self.assertEqual((writes, self.seen_by_stripe), (["INSERT"], []))
        self.assertEqual(list(Payment.objects.values()), [before])

    def test_stripe_unreachable_releases_the_claim_in_one_write_and_stays_pending(self):
        self.stripe.faults.add("POST /v1/charges", "api_error", times=3)
        with self.assertLogs("payments.checkout", "WARNING"), self.assertLogs("django.request"):
            response, writes = self.pay({"number": "4242424242424242", **CARD}, "down")
        self.assertEqual(response.status_code, 503)
        self.assertEqual(writes, ["INSERT", "UPDATE"])
        payment = Payment.objects.get()
        self.assertEqual((payment.status, payment.response_body), ("pending", None))
        self.assertIsNone(payment.locked_until)  # a client retry may claim it at once
        self.assertTrue(payment.stripe_token_id)  # the token was made; its key replays it


@override_settings(STRIPE_WEBHOOK_SECRET="whsec_write_path")
class WebhookWritePathTests(FakeStripeMixin, APITestCase):
    """A webhook repeating what the paying request settled reads the payment once and
    writes nothing to it (no lock either); one that brings news is settled under the lock.
    (The sandbox forwards every event: this is most of a sandbox payment's extra cost.)"""

    def deliver(self, event):
        with CaptureQueriesContext(connection) as queries:
            answer = post_signed_event(self.client, event, "whsec_write_path")
        self.assertEqual(answer.status_code, 200, answer.content)
        reads = [
            q["sql"]
            for q in queries.captured_queries
            if q["sql"].startswith("SELECT") and f'FROM "{TABLE}"' in q["sql"]
        ]
        return reads, payment_writes(queries)

    def test_a_repeat_reads_once_and_writes_nothing(self):
        self.client.force_authenticate(User.objects.create_user("payer"))
        paid = self.client.post(
            reverse("payments"), {"number": "4242424242424242", **CARD}, format="json"
        )
        self.assertEqual(paid.status_code, 201)
        [event] = [e for e in self.stripe.events if e["type"] == "charge.succeeded"]
        reads, writes = self.deliver(event)
        self.assertEqual((len(reads), writes), (1, []))
        self.assertNotIn("FOR UPDATE", " ".join(reads))

    def test_news_is_settled_under_the_lock(self):
        user = User.objects.create_user("payer")
        payment = Payment.objects.create(owner=user, amount=500, currency="usd", method="token")
        charge = stripe.Charge.create(
            amount=500, currency="usd", source="tok_visa", metadata={"payment_id": str(payment.pk)}
        )
        [event] = [e for e in self.stripe.events if e["type"] == "charge.succeeded"]
        reads, writes = self.deliver(event)
        self.assertEqual(writes, ["UPDATE"])
        self.assertEqual(len(reads), 2)  # the unlocked look, then the locked read
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.stripe_charge_id), ("succeeded", charge.id))

    def test_an_apply_that_writes_other_rows_is_never_tried_unlocked(self):
        # A charge carrying its refund list upserts Refund rows: that may only happen under
        # the payment's lock (two webhooks racing once made duplicate Refund rows).
        from payments import settlement

        self.client.force_authenticate(User.objects.create_user("payer"))
        paid = self.client.post(
            reverse("payments"), {"number": "4242424242424242", **CARD}, format="json"
        )
        payment = Payment.objects.get(pk=paid.json()["id"])
        charge = stripe.Charge.retrieve(payment.stripe_charge_id, expand=["refunds"])
        depths, baseline = [], len(connection.atomic_blocks)
        real_upsert = settlement.upsert_refund

        def watched(row, obj):
            depths.append(len(connection.atomic_blocks) - baseline)
            return real_upsert(row, obj)

        stripe.Refund.create(charge=charge.id, amount=100)
        charge = stripe.Charge.retrieve(charge.id, expand=["refunds"])
        with mock.patch.object(settlement, "upsert_refund", watched):
            settlement.settle_charge(payment, charge.to_dict(), fresh=True)
        self.assertTrue(depths)
        self.assertNotIn(0, depths)  # every upsert inside settle's transaction
