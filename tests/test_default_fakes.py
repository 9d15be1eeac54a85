"""Faked by default: every test starts on fresh fakes, like Django's mail.outbox."""

from unittest import mock

import requests
import responses
import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase
from django.urls import reverse
from rest_framework.test import APITestCase

from backend.testing import fakes, no_default_fakes, without_default_fakes
from fakes import netguard
from notifications import todos
from notifications.push import PushService
from notifications.testing import fake_push
from payments.testing import MockToken, fake_stripe

User = get_user_model()
CARD = {"exp_month": 12, "exp_year": 2034, "cvc": "123", "amount": 500}


class PayingTestCase(APITestCase):
    def setUp(self):
        self.client.force_authenticate(User.objects.create_user("ada"))

    def pay(self, number):
        return self.client.post(reverse("payments"), {"number": number, **CARD}, format="json")


class TutorialTests(PayingTestCase):
    @mock.patch("stripe.Token", MockToken)
    def test_the_tutorial_test_mock_token_only_declined_card_is_a_400(self):
        response = self.pay("4000000000000002")
        self.assertEqual(response.status_code, 400, response.content)
        self.assertEqual(response.json()["error"]["code"], "card_declined")
        self.assertEqual(response.json()["error"]["decline_code"], "generic_decline")

    def test_nothing_patched_pays_with_4242_and_is_declined_with_9995(self):
        paid = self.pay("4242424242424242")
        self.assertEqual(paid.status_code, 201, paid.content)
        self.assertEqual(paid.json()["status"], "succeeded")
        declined = self.pay("4000000000009995")
        self.assertEqual(declined.status_code, 400, declined.content)
        self.assertEqual(declined.json()["error"]["decline_code"], "insufficient_funds")
        self.assertEqual(len(fakes().stripe.charges), 2)


class FreshPerTestTests(SimpleTestCase):
    """Whichever runs second sees nothing of the first (both runners, any order)."""

    def charge_and_push_on_empty_fakes(self):
        self.assertEqual(fakes().stripe.charges, [])
        self.assertEqual(fakes().stripe.requests, [])
        self.assertEqual(fakes().push.outbox, [])
        stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        PushService().create_message([{"text": "hi", "conditions": ["UserID", "EQ", 1]}])
        fakes().todos.todos = []
        self.assertEqual(len(fakes().stripe.charges), 1)
        self.assertEqual(len(fakes().push.outbox), 1)

    def test_first(self):
        self.charge_and_push_on_empty_fakes()

    def test_second(self):
        self.charge_and_push_on_empty_fakes()

    def test_the_todo_api_is_seeded_afresh(self):
        self.assertEqual(len(todos.get_todos().json()), 200)


class PrecedenceTests(SimpleTestCase):
    def test_a_tests_own_fake_stripe_wins_and_the_default_comes_back(self):
        default = fakes().stripe
        with fake_stripe() as own:
            self.assertIs(fakes().stripe, own)
            stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.assertEqual((len(own.charges), len(default.charges)), (1, 0))
        self.assertIs(fakes().stripe, default)
        stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.assertEqual(len(default.charges), 1)

    def test_a_tests_own_fake_push_wins(self):
        with fake_push() as own:
            self.assertIs(fakes().push, own)
            PushService().create_message([{"text": "hi", "conditions": ["UserID", "EQ", 1]}])
        self.assertEqual(len(own.outbox), 1)
        self.assertEqual(fakes().push.outbox, [])

    @responses.activate
    def test_responses_wins_over_the_default_push_and_todo_fakes(self):
        responses.add(
            responses.POST,
            settings.PUSH_API_URL + "createMessage",
            json={"status_code": 200, "status_message": "OK", "response": {"Messages": ["R-1"]}},
        )
        responses.add(responses.GET, settings.TODOS_API_URL + "todos", json=[])
        codes = PushService().create_message([{"text": "x", "conditions": ["UserID", "EQ", 1]}])
        self.assertEqual(codes, ["R-1"])
        self.assertEqual(todos.get_uncompleted_todos(), [])
        self.assertEqual(len(responses.calls), 2)
        self.assertEqual(fakes().push.outbox, [])

    @responses.activate
    def test_responses_wins_over_the_default_stripe(self):
        responses.add(
            responses.POST,
            "https://api.stripe.com/v1/charges",
            json={"id": "ch_from_responses", "object": "charge", "status": "succeeded"},
        )
        charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.assertEqual(charge.id, "ch_from_responses")
        self.assertEqual(fakes().stripe.requests, [])

    def test_mock_charge_patch_wins(self):
        fake = mock.MagicMock(return_value=stripe.Charge.construct_from({"id": "ch_m"}, "k"))
        with mock.patch("stripe.Charge.create", fake):
            self.assertEqual(stripe.Charge.create(amount=1).id, "ch_m")
        self.assertEqual(fakes().stripe.requests, [])


class OptOutTests(SimpleTestCase):
    @without_default_fakes
    def test_without_default_fakes_the_real_clients_run_under_the_guard(self):
        self.assertEqual(type(stripe.default_http_client).__name__, "RequestsClient")
        # as configured: in this test run (DEBUG on, no credentials) the sandbox service's
        self.assertEqual(settings.PUSH_API_URL, f"{settings.SANDBOX_URL}/push/")
        self.assertEqual(stripe.api_base, f"{settings.SANDBOX_URL}/stripe")
        with self.assertRaises(netguard.NetworkBlocked):
            requests.post("https://api.pushwoosh.com/json/1.3/createMessage", timeout=1)

    def test_the_defaults_are_back_after_the_block(self):
        with no_default_fakes():
            self.assertNotIn("fake", settings.PUSH_API_URL)
        self.assertIn("fake", settings.PUSH_API_URL)
        stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.assertEqual(len(fakes().stripe.charges), 1)
