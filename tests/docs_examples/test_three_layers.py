"""Our harness, layer by layer (docs/testing-harness.md).

Faked by default (every test starts with fresh fakes, reached through `fakes()`), then
the three layers: the client library (`MockToken`), HTTP in process (`fake_stripe()`,
`FakeStripeMixin`, `fake_push()`, `fake_todos()`), and a real server on loopback
(`start_fake_services()`, `stripe_server()`).
"""

from unittest import mock

import stripe
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase, TestCase
from django.urls import reverse
from rest_framework.test import APITestCase

from backend.fakeservices import start_fake_services
from backend.testing import fakes
from notifications.push import PushService
from notifications.tasks import send_reminder
from notifications.testing import fake_push, fake_todos
from payments.models import Payment
from payments.testing import FakeStripeMixin, MockToken, fake_stripe, stripe_server

User = get_user_model()
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


# --8<-- [start:default-fakes]
class DefaultFakesTest(TestCase):
    def test_a_reminder_reaches_the_user(self):
        user = User.objects.create_user("ada")
        fakes().todos.todos = [{"userId": user.id, "id": 1, "title": "x", "completed": False}]

        send_reminder()

        self.assertEqual(fakes().push.received_by(user.id), ["You have 1 unfinished todo"])
        self.assertEqual(fakes().stripe.charges, [])  # nothing leaks in from other tests


# --8<-- [end:default-fakes]


# --8<-- [start:client-library-layer]
class ClientLibraryLayerTest(APITestCase):
    def setUp(self):
        self.client.force_authenticate(User.objects.create_user("ada"))

    @mock.patch("stripe.Token", MockToken)  # a stripe.Token answered by the fake Stripe
    def test_a_declined_card_gets_stripes_answer(self):
        card = {**CARD, "number": "4000000000009995"}  # Stripe's insufficient-funds test card
        response = self.client.post(reverse("payments"), {**card, "amount": 500}, format="json")

        self.assertEqual(response.status_code, 400)
        error = response.json()["error"]
        self.assertEqual(
            (error["code"], error["decline_code"]), ("card_declined", "insufficient_funds")
        )
        self.assertEqual(error["message"], "Your card has insufficient funds.")


# --8<-- [end:client-library-layer]


# --8<-- [start:in-process-http-layer]
class InProcessHttpLayerTest(FakeStripeMixin, APITestCase):  # self.stripe is the engine
    def setUp(self):
        super().setUp()
        self.client.force_authenticate(User.objects.create_user("ada"))

    def test_a_lost_answer_is_retried_and_charges_once(self):
        # or api_error, rate_limit, timeout, connection_error
        self.stripe.faults.add("POST /v1/charges", "lost_response")

        response = self.client.post(reverse("payments"), {**CARD, "amount": 500}, format="json")

        self.assertEqual(response.status_code, 201)  # stripe-python retried with the same key
        self.assertEqual(len(self.stripe.charges), 1)
        self.assertEqual(Payment.objects.get().status, Payment.Status.SUCCEEDED)


class ContextManagersTest(TestCase):
    def test_each_fake_for_a_block(self):
        with fake_stripe() as engine:  # also a decorator
            stripe.Charge.create(amount=700, currency="usd", source="tok_visa")
        self.assertEqual([charge["amount"] for charge in engine.charges], [700])

        with fake_push() as provider:
            PushService().create_message([{"text": "Hi", "conditions": ["UserID", "EQ", 7]}])
        self.assertEqual(provider.received_by(7), ["Hi"])

        with fake_todos() as api:
            api.todos = []
            self.assertEqual(send_reminder()["planned"], 0)


# --8<-- [end:in-process-http-layer]


# --8<-- [start:server-layer]
class ServerLayerTest(SimpleTestCase):
    def test_the_real_client_over_http(self):
        server = start_fake_services()  # every fake on 127.0.0.1, a free port, in a thread
        self.addCleanup(server.stop)

        with stripe_server(server.url + "/stripe"):  # stripe-python now talks HTTP to it
            charge = stripe.Charge.create(amount=900, currency="usd", source="tok_visa")

        self.assertTrue(server.url.startswith("http://127.0.0.1:"))
        self.assertEqual(charge.status, "succeeded")
        self.assertEqual(server.mounts["/stripe"].get(charge.id)["amount"], 900)


# --8<-- [end:server-layer]
