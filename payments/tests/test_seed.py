"""The tutorial's test, in its own shape: a hand-written MockToken patched over stripe.Token."""

from unittest import mock

import stripe
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework import status
from rest_framework.test import APITestCase

from payments.models import Payment


# --8<-- [start:hand-written-mock-token]
class MockToken(stripe.Token):
    @classmethod
    def create(cls, api_key=None, idempotency_key=None, stripe_account=None, **params):
        if params["card"]["number"] != "4242424242424242":
            raise stripe.CardError("Invalid card number", None, 402)
        response = {
            "card": {"brand": "Visa", "exp_month": 12, "exp_year": 2030, "funding": "credit",
                     "id": "card_17XXdZGzvyST06Z022EiG1zt", "last4": "4242", "object": "card"},
            "client_ip": "",
            "created": 1453817861,
            "id": "tok_42XXdZGzvyST06Z0LA6h5gJp",
            "livemode": False,
            "object": "token",
            "type": "card",
            "used": False,
        }  # fmt: skip
        return cls.construct_from(response, api_key)


class PaymentTest(APITestCase):
    def setUp(self):
        self.client.force_authenticate(get_user_model().objects.create_user("seed"))

    @mock.patch("stripe.Token", MockToken)
    def test_payments(self):
        data = {"number": "1111111111111111", "exp_month": 12, "exp_year": 2030, "cvc": "123",
                "amount": 500}  # fmt: skip
        response = self.client.post(reverse("payments"), data=data, format="json")
        self.assertEqual(response.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(response.json()["error"]["type"], "card_error")
        self.assertEqual(Payment.objects.get().status, Payment.Status.FAILED)


# --8<-- [end:hand-written-mock-token]
