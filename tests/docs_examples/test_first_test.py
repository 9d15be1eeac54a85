"""The README's "Write your first test": one payment test on each of the harness's three
layers. tests/test_docs.py checks that the README shows exactly this code."""

# --8<-- [start:first-test]
from unittest import mock

from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APITestCase

from backend.fakeservices import start_fake_services
from payments.testing import MockToken, fake_stripe, stripe_server


class FirstTest(APITestCase):
    def setUp(self):
        self.client.force_authenticate(get_user_model().objects.create_user("ada"))

    def pay(self, number):
        card = {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}
        return self.client.post(reverse("payments"), {**card, "amount": 500}, format="json")

    @mock.patch("stripe.Token", MockToken)  # 1. the client library, answered by the fake
    def test_a_declined_card(self):
        error = self.pay("4000000000000002").json()["error"]
        self.assertEqual(error["code"], "card_declined")

    def test_a_paid_card(self):  # 2. HTTP in process: stripe-python's own code, no socket
        with fake_stripe() as engine:
            self.assertEqual(self.pay("4242424242424242").status_code, 201)
        self.assertEqual(engine.charges[0]["amount"], 500)

    def test_over_a_real_socket(self):  # 3. a real HTTP server on 127.0.0.1
        server = start_fake_services()
        self.addCleanup(server.stop)
        with stripe_server(server.url + "/stripe"):
            paid = self.pay("4242424242424242").json()
        self.assertEqual((paid["status"], paid["card_last4"]), ("succeeded", "4242"))


# --8<-- [end:first-test]
