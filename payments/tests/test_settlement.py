"""Settlement's rules, one at a time: forward only, only the changed fields, the claim's
owner alone stores the answer (payments/settlement.py)."""

from datetime import timedelta

import stripe
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments import settlement
from payments.models import Payment
from payments.testing import FakeStripeMixin, LedgerAssertionsMixin

User = get_user_model()
Status = Payment.Status
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


class MayMoveTests(TestCase):
    def test_money_taken_never_goes_back(self):
        for paid in settlement.PAID:
            for earlier in (Status.PENDING, Status.REQUIRES_ACTION, Status.FAILED,
                            Status.REQUIRES_CAPTURE, Status.CANCELED):  # fmt: skip
                with self.subTest(paid=paid, to=earlier):
                    self.assertFalse(settlement.may_move(paid, earlier))

    def test_forward_moves(self):
        for current, new in [
            (Status.PENDING, Status.SUCCEEDED),
            (Status.REQUIRES_ACTION, Status.FAILED),
            (Status.FAILED, Status.SUCCEEDED),  # a later attempt on the same intent succeeded
            (Status.REQUIRES_CAPTURE, Status.SUCCEEDED),
            (Status.REQUIRES_CAPTURE, Status.CANCELED),
            (Status.PENDING, Status.REQUIRES_ACTION),
            (Status.REQUIRES_ACTION, Status.PENDING),  # a sheet's failed 3DS: try another card
        ]:
            with self.subTest(current=current, new=new):
                self.assertTrue(settlement.may_move(current, new))

    def test_a_released_hold_and_a_decline_stay_what_they_are(self):
        self.assertFalse(settlement.may_move(Status.CANCELED, Status.SUCCEEDED))
        self.assertFalse(settlement.may_move(Status.CANCELED, Status.REQUIRES_CAPTURE))
        self.assertFalse(settlement.may_move(Status.FAILED, Status.PENDING))
        self.assertFalse(settlement.may_move(Status.REQUIRES_CAPTURE, Status.FAILED))


class SettleTests(FakeStripeMixin, LedgerAssertionsMixin, TestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("ada")

    def pending(self, method=Payment.Method.CARD, **fields):
        return Payment.objects.create(
            owner=self.user, amount=1000, currency="usd", method=method, **fields
        )

    def charged(self, payment):
        token = stripe.Token.create(card=CARD)
        return stripe.Charge.create(
            amount=payment.amount,
            currency="usd",
            source=token.id,
            metadata={"payment_id": str(payment.pk)},
        )

    def test_an_old_charge_does_not_undo_refunds(self):
        payment = self.pending()
        charge = self.charged(payment)
        payment = settlement.settle_charge(payment, charge)[0]
        stripe.Refund.create(charge=charge.id, amount=400)
        settlement.sync_refunds(payment)
        settlement.settle_charge(payment, charge)  # the first answer again (idempotent replay)
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.amount_refunded), ("partially_refunded", 400))
        self.assertLedgerMatches(pending_ok=False)

    def test_a_decline_after_success_changes_nothing(self):
        payment = self.pending()
        settlement.settle_charge(payment, self.charged(payment))
        before = Payment.objects.values().get(pk=payment.pk)
        settlement.settle_failure(payment, "not_charged", "", "Stripe has no charge.")
        self.assertEqual(Payment.objects.values().get(pk=payment.pk), before)

    def test_writes_only_what_changed_and_nothing_when_nothing_did(self):
        payment = self.pending()
        charge = self.charged(payment)
        with CaptureQueriesContext(connection) as queries:
            settlement.settle_charge(payment, charge)
        [update] = [q["sql"] for q in queries if q["sql"].startswith("UPDATE")]
        for written in ("status", "stripe_charge_id", "card_last4", "updated_at"):
            self.assertIn(f'"{written}"', update)
        for untouched in ("response_body", "locked_until", "amount", "idempotency_key"):
            self.assertNotIn(f'"{untouched}" =', update)
        with CaptureQueriesContext(connection) as queries:
            settlement.settle_charge(payment, charge)  # the same object once more
        self.assertEqual([q for q in queries if q["sql"].startswith("UPDATE")], [])

    def test_only_the_claims_owner_stores_the_answer(self):
        mine = timezone.now() + timedelta(seconds=120)
        payment = self.pending(locked_until=mine)
        # Another request took the row over (the claim had lapsed): a new claim is on it.
        theirs = mine + timedelta(seconds=5)
        Payment.objects.filter(pk=payment.pk).update(locked_until=theirs)
        answer = lambda row: (201, {"id": row.pk}, {}, True)  # noqa: E731
        _, answered = settlement.settle_charge(
            payment, self.charged(payment), claim=mine, answer=answer
        )
        self.assertEqual(answered[:2], (201, {"id": payment.pk}))  # this request's answer
        payment.refresh_from_db()
        self.assertEqual(payment.status, "succeeded")  # the state is Stripe's either way
        self.assertIsNone(payment.response_body)  # but the answer is the new owner's to store
        self.assertEqual(payment.locked_until, theirs)

    def test_the_owner_stores_the_answer_and_releases_the_claim_in_the_same_write(self):
        mine = timezone.now() + timedelta(seconds=120)
        payment = self.pending(locked_until=mine)
        answer = lambda row: (201, {"status": row.status}, {}, True)  # noqa: E731
        with CaptureQueriesContext(connection) as queries:
            settlement.settle_charge(payment, self.charged(payment), claim=mine, answer=answer)
        self.assertEqual(len([q for q in queries if q["sql"].startswith("UPDATE")]), 1)
        payment.refresh_from_db()
        self.assertEqual(
            (payment.response_status, payment.response_body, payment.locked_until),
            (201, {"status": "succeeded"}, None),
        )

    def test_a_stale_charge_of_an_earlier_attempt_keeps_the_newer_charge_id(self):
        payment = self.pending(method=Payment.Method.PAYMENT_SHEET)
        first, second = self.charged(payment), self.charged(payment)
        settlement.settle_charge(payment, second)
        failed_earlier = {**first.to_dict(), "status": "failed", "failure_code": "card_declined"}
        settlement.settle_charge(payment, failed_earlier)
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.stripe_charge_id), ("succeeded", second.id))
        self.assertEqual(payment.failure_code, "")
