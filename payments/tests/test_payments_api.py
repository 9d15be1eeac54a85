import logging
import threading
import unittest
from datetime import timedelta
from unittest import mock

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TransactionTestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient, APITestCase

from payments.models import Payment
from payments.testing import FakeStripeMixin, MockToken, fake_stripe
from payments.tests.helpers import expect_stripe_unavailable

User = get_user_model()
CARD = {"exp_month": 12, "exp_year": 2034, "cvc": "123"}


def card(number, amount=500, **extra):
    return {"number": number, **CARD, "amount": amount, **extra}


class PaymentsTestCase(FakeStripeMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("payer")
        self.client.force_authenticate(self.user)

    def pay(self, data, key=None):
        headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
        return self.client.post(reverse("payments"), data, format="json", **headers)


class ChargeTests(PaymentsTestCase):
    def test_a_good_card_is_charged_once_and_recorded(self):
        response = self.pay(card("4242424242424242", description="Coffee"))
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        self.assertEqual(
            (body["status"], body["card_brand"], body["card_last4"]), ("succeeded", "visa", "4242")
        )
        [charge] = self.stripe.charges
        self.assertEqual((charge["amount"], charge["currency"]), (500, "usd"))
        self.assertEqual(charge["metadata"]["payment_id"], str(body["id"]))
        payment = Payment.objects.get()
        self.assertEqual(payment.stripe_charge_id, charge["id"])
        self.assertEqual(payment.description, "Coffee")

    def test_each_decline_family_is_a_400_with_stripes_codes(self):
        cases = {
            "4000000000000002": ("card_declined", "generic_decline"),
            "4000000000009995": ("card_declined", "insufficient_funds"),
            "4000000000009987": ("card_declined", "lost_card"),
            "4000000000009979": ("card_declined", "stolen_card"),
            "4100000000000019": ("card_declined", "fraudulent"),
            "4000000000000069": ("expired_card", "expired_card"),
            "4000000000000127": ("incorrect_cvc", "incorrect_cvc"),
            "4000000000000119": ("processing_error", "processing_error"),
        }
        for number, (code, decline_code) in cases.items():
            response = self.pay(card(number))
            self.assertEqual(response.status_code, 400, number)
            error = response.json()["error"]
            self.assertEqual(
                (error["type"], error["code"], error["decline_code"]),
                ("card_error", code, decline_code),
                number,
            )
            self.assertTrue(error["message"])
            payment = Payment.objects.get(pk=error["payment"])
            self.assertEqual(
                (payment.status, payment.failure_code, payment.decline_code),
                ("failed", code, decline_code),
            )
        self.assertFalse([c for c in self.stripe.charges if c["paid"]], "nothing may be charged")

    def test_invalid_card_data_is_rejected_by_stripe_at_tokenisation(self):
        response = self.pay(card("4242424242424241"))
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "incorrect_number")
        self.assertEqual(self.stripe.charges, [])

    def test_a_token_from_the_mobile_sdk(self):
        response = self.pay({"token": "tok_mastercard", "amount": 1200, "currency": "eur"})
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["card_brand"], "mastercard")
        self.assertEqual(self.stripe.charges[0]["currency"], "eur")

    def test_an_unknown_token_is_a_400_with_stripes_code(self):
        response = self.pay({"token": "tok_doesnotexist", "amount": 500})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "resource_missing")

    def test_payment_method_flow_succeeds(self):
        response = self.pay({"payment_method": "pm_card_visa", "amount": 700})
        self.assertEqual(response.status_code, 201, response.content)
        payment = Payment.objects.get()
        self.assertEqual(payment.status, "succeeded")
        self.assertTrue(payment.stripe_payment_intent_id.startswith("pi_"))

    def test_3d_secure_answers_202_with_the_client_secret(self):
        response = self.pay({"payment_method": "pm_card_threeDSecure2Required", "amount": 700})
        self.assertEqual(response.status_code, 202, response.content)
        body = response.json()
        self.assertEqual(body["status"], "requires_action")
        intent = self.stripe.get(body["stripe_payment_intent_id"])
        self.assertEqual(body["client_secret"], intent["client_secret"])
        self.assertEqual(body["next_action"]["type"], "use_stripe_sdk")
        self.assertEqual(self.stripe.charges, [])

    def test_a_return_url_reaches_stripe_with_the_payment_method(self):
        data = {"payment_method": "pm_card_threeDSecure2Required", "amount": 700}
        response = self.pay({**data, "return_url": "myapp://payments/done"})
        self.assertEqual(response.status_code, 202, response.content)
        [(_, _, params)] = [r for r in self.stripe.requests if r[1] == "/v1/payment_intents"]
        self.assertEqual(params["return_url"], "myapp://payments/done")
        refused = self.pay({"token": "tok_visa", "amount": 700, "return_url": "https://x.example/"})
        self.assertEqual(refused.json()["error"]["param"], "return_url")

    def test_payment_method_decline_is_a_card_error(self):
        response = self.pay(
            {"payment_method": "pm_card_visa_chargeDeclinedInsufficientFunds", "amount": 700}
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["decline_code"], "insufficient_funds")


class ValidationTests(PaymentsTestCase):
    def assertField(self, data, field, code):
        response = self.pay(data)
        self.assertEqual(response.status_code, 400, response.content)
        error = response.json()["error"]
        self.assertEqual(error["code"], "validation_error")
        self.assertEqual(error["fields"][field][0]["code"], code, error)
        self.assertEqual(Payment.objects.count(), 0, "no half-written record")
        self.assertEqual(self.stripe.requests, [], "Stripe must not be called")

    def test_amounts_and_currencies_are_validated(self):
        self.assertField(card("4242424242424242", amount=0), "amount", "min_value")
        self.assertField(card("4242424242424242", amount=49), "amount", "amount_too_small")
        self.assertField(
            card("4242424242424242", amount=29, currency="gbp"), "amount", "amount_too_small"
        )
        self.assertField(card("4242424242424242", amount=10**7), "amount", "amount_too_large")
        self.assertField(card("4242424242424242", currency="xyz"), "currency", "invalid_currency")

    def test_exactly_one_payment_source(self):
        self.assertField({"amount": 500}, "non_field_errors", "payment_source_required")
        self.assertField(
            {**card("4242424242424242"), "token": "tok_visa"},
            "non_field_errors",
            "payment_source_required",
        )
        self.assertField({"number": "4242424242424242", "amount": 500}, "exp_month", "required")
        self.assertField(card("4242-abc"), "number", "invalid_number")

    @override_settings(PAYMENTS_ALLOW_RAW_CARDS=False)
    def test_raw_cards_are_refused_when_not_allowed(self):
        self.assertField(card("4242424242424242"), "non_field_errors", "raw_card_data_not_allowed")
        self.assertEqual(self.pay({"token": "tok_visa", "amount": 500}).status_code, 201)

    def test_a_card_number_is_never_echoed_in_errors(self):
        response = self.pay(card("4242424242424242", amount=10))
        self.assertNotIn("4242424242424242", response.content.decode())


class IdempotencyTests(PaymentsTestCase):
    def test_same_key_same_body_replays_and_charges_once(self):
        first = self.pay(card("4242424242424242"), key="order-1")
        second = self.pay(card("4242424242424242"), key="order-1")
        self.assertEqual(first.status_code, 201)
        self.assertEqual(second.status_code, 201)
        self.assertEqual(first.json()["id"], second.json()["id"])
        self.assertEqual(second["Idempotent-Replayed"], "true")
        self.assertEqual(len(self.stripe.charges), 1)

    def test_a_replayed_decline_is_the_same_decline(self):
        first = self.pay(card("4000000000000002"), key="order-2")
        second = self.pay(card("4000000000000002"), key="order-2")
        self.assertEqual(first.json(), second.json())
        self.assertEqual(len(self.stripe.charges), 1)

    def test_same_key_different_body_is_refused(self):
        self.pay(card("4242424242424242"), key="order-3")
        response = self.pay(card("4242424242424242", amount=900), key="order-3")
        self.assertEqual(response.status_code, 422)
        self.assertEqual(response.json()["error"]["code"], "idempotency_key_reused")
        self.assertEqual(len(self.stripe.charges), 1)

    def test_a_day_old_pending_payment_is_not_retried_against_stripe(self):
        self.stripe.faults.add("POST /v1/charges", "connection_error", times=3)
        with expect_stripe_unavailable(self):
            self.pay(card("4242424242424242"), key="old")
        Payment.objects.update(created_at=timezone.now() - timedelta(hours=24), locked_until=None)
        requests_before = len(self.stripe.requests)
        response = self.pay(card("4242424242424242"), key="old")
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.json()["error"]["code"], "payment_needs_reconciliation")
        self.assertEqual(len(self.stripe.requests), requests_before)

    def test_keys_are_per_user(self):
        self.pay(card("4242424242424242"), key="shared")
        self.client.force_authenticate(User.objects.create_user("other"))
        self.assertEqual(self.pay(card("4242424242424242"), key="shared").status_code, 201)
        self.assertEqual(len(self.stripe.charges), 2)


class StripeFaultTests(PaymentsTestCase):
    def test_stripe_down_is_a_503_and_the_payment_stays_pending(self):
        for kind in ("api_error", "rate_limit", "timeout", "connection_error"):
            self.stripe.faults.add(
                "POST /v1/charges", kind, times=3
            )  # outlasts the library's retries
            with expect_stripe_unavailable(self):
                response = self.pay(card("4242424242424242"))
            self.assertEqual(response.status_code, 503, kind)
            self.assertEqual(response.json()["error"]["code"], "payment_provider_unavailable")
            self.assertIn("Retry-After", response)
        self.assertEqual(set(Payment.objects.values_list("status", flat=True)), {"pending"})
        self.assertEqual(self.stripe.charges, [])

    def test_lost_response_is_retried_by_the_library_and_charges_once(self):
        self.stripe.faults.add("POST /v1/charges", "lost_response")
        response = self.pay(card("4242424242424242"))
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(len(self.stripe.charges), 1)

    def test_client_retry_after_a_503_completes_without_a_second_charge(self):
        self.stripe.faults.add("POST /v1/charges", "lost_response", times=3)
        with expect_stripe_unavailable(self):
            first = self.pay(card("4242424242424242"), key="retry-me")
        self.assertEqual(first.status_code, 503)
        self.assertEqual(len(self.stripe.charges), 1, "Stripe did charge; the answer was lost")
        second = self.pay(card("4242424242424242"), key="retry-me")
        self.assertEqual(second.status_code, 201, second.content)
        self.assertEqual(len(self.stripe.charges), 1)
        self.assertEqual(Payment.objects.get().status, "succeeded")


class ReadTests(PaymentsTestCase):
    def test_list_is_own_payments_newest_first_paginated(self):
        for amount in (500, 600, 700):
            self.pay(card("4242424242424242", amount=amount))
        other = User.objects.create_user("other")
        Payment.objects.create(owner=other, amount=999, currency="usd", method="card")
        response = self.client.get(reverse("payments"), {"page_size": 2})
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body["count"], 3)
        self.assertEqual([p["amount"] for p in body["results"]], [700, 600])
        self.assertIsNotNone(body["next"])

    def test_another_users_payment_is_a_404(self):
        other = User.objects.create_user("other")
        theirs = Payment.objects.create(owner=other, amount=999, currency="usd", method="card")
        response = self.client.get(reverse("payment-detail", args=[theirs.pk]))
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response.json()["error"]["code"], "not_found")

    def test_anonymous_is_a_401(self):
        self.client.force_authenticate(None)
        self.assertEqual(self.pay(card("4242424242424242")).status_code, 401)
        self.assertEqual(self.stripe.requests, [])

    @override_settings(PAYMENTS_THROTTLE="2/hour")
    def test_payment_creation_is_throttled_per_user(self):
        self.pay(card("4000000000000002"))
        self.pay(card("4000000000009995"))
        response = self.pay(card("4242424242424242"))
        self.assertEqual(response.status_code, 429)
        self.assertEqual(len(self.stripe.charges), 2)
        self.assertEqual(
            self.client.get(reverse("payments")).status_code, 200, "reads are not capped"
        )

    @override_settings(PAYMENTS_THROTTLE="2/hour")
    def test_requests_the_api_refuses_itself_are_not_attempts(self):
        for _ in range(3):
            self.assertEqual(self.pay(card("4242-abc")).status_code, 400)
        self.assertEqual(self.pay(card("4242424242424242")).status_code, 201)
        self.assertEqual(self.pay(card("4242424242424242")).status_code, 201)
        self.assertEqual(self.pay(card("4242424242424242")).status_code, 429)


class RefundTests(PaymentsTestCase):
    def setUp(self):
        super().setUp()
        self.payment_id = self.pay(card("4242424242424242", amount=1000)).json()["id"]
        self.staff = User.objects.create_user("staff", is_staff=True)

    def refund(self, data=None, user=None):
        self.client.force_authenticate(user or self.staff)
        return self.client.post(
            reverse("payment-refund", args=[self.payment_id]), data or {}, format="json"
        )

    def test_partial_then_full_refund(self):
        response = self.refund({"amount": 300})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(
            (response.json()["status"], response.json()["amount_refunded"]),
            ("partially_refunded", 300),
        )
        response = self.refund()
        self.assertEqual(
            (response.json()["status"], response.json()["amount_refunded"]), ("refunded", 1000)
        )
        self.assertEqual(self.stripe.charges[0]["amount_refunded"], 1000)

    def test_refunding_more_than_captured_is_a_400(self):
        response = self.refund({"amount": 1001})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "amount_too_large")
        self.assertEqual(self.stripe.all("refund"), [])

    def test_non_staff_cannot_refund(self):
        response = self.refund(user=self.user)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(self.stripe.all("refund"), [])


class CardDataIsNeverKeptTests(PaymentsTestCase):
    def test_no_card_number_or_cvc_in_the_database_or_logs(self):
        number, cvc = "4000056655665556", "987"
        with self.assertLogs(level=logging.DEBUG) as logs:
            logging.getLogger("payments").debug("marker")
            self.pay({**card(number), "cvc": cvc, "amount": 800})
            self.pay({**card("4000000000000002"), "cvc": cvc})
        text = "\n".join(logs.output)
        self.assertNotIn(number, text)
        with connection.cursor() as cursor:
            for model in (Payment, User):
                cursor.execute(f"SELECT * FROM {model._meta.db_table}")
                dump = repr(cursor.fetchall())
                self.assertNotIn(number, dump)
                self.assertNotIn("4000000000000002", dump)
                self.assertNotIn(f"'{cvc}'", dump)
        self.assertNotIn(number, repr(self.stripe.requests), "the fake keeps no PAN either")


class EngineBackedMockTokenTests(APITestCase):
    """payments.testing.MockToken: the client-library layer, on the same engine."""

    def setUp(self):
        self.client.force_authenticate(User.objects.create_user("mt"))

    @mock.patch("stripe.Token", MockToken)
    def test_seed_shape_with_the_engine_backed_mock_token(self):
        with fake_stripe() as engine:
            declined = self.client.post(
                reverse("payments"), card("1111111111111111"), format="json"
            )
            paid = self.client.post(reverse("payments"), card("4242424242424242"), format="json")
        self.assertEqual(declined.status_code, 400)
        self.assertEqual(declined.json()["error"]["code"], "incorrect_number")
        self.assertEqual(paid.status_code, 201)
        self.assertEqual(len(engine.charges), 1)


@unittest.skipIf(
    connection.vendor == "sqlite",
    "SQLite serialises writers; concurrent requests only race on PostgreSQL",
)
class ConcurrentIdempotencyTests(TransactionTestCase):
    def test_concurrent_duplicates_charge_once(self):
        user = User.objects.create_user("racer")
        results = []
        barrier = threading.Barrier(4)

        def post():
            client = APIClient()
            client.force_authenticate(user)
            barrier.wait()
            response = client.post(
                reverse("payments"),
                card("4242424242424242"),
                format="json",
                HTTP_IDEMPOTENCY_KEY="race-1",
            )
            results.append(response.status_code)
            connection.close()

        with fake_stripe() as engine:
            threads = [threading.Thread(target=post) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        self.assertEqual(len(results), 4)
        self.assertTrue(set(results) <= {201, 409}, results)
        self.assertIn(201, results)
        self.assertEqual(len(engine.charges), 1)
        self.assertEqual(Payment.objects.count(), 1)
