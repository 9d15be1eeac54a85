"""3-D Secure with the backend on the sandbox service, over HTTP (fast tests; the page
itself: test_sandbox_service.py; in a real browser: test_browser_3ds.py)."""

import requests
import stripe
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APITestCase

from payments.models import Payment
from payments.testing.service import SandboxServiceMixin, deliver_events

User = get_user_model()


@override_settings(PAYMENTS_THROTTLE="1000/hour")
class ThreeDSecureThroughTheServiceTests(SandboxServiceMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("ada")
        self.client.force_authenticate(self.user)

    def pay_3ds(self):
        answer = self.client.post(
            reverse("payments"), {"payment_method": "pm_card_threeDSecure2Required", "amount": 900},
            format="json",
        )  # fmt: skip
        self.assertEqual(answer.status_code, 202, answer.content)
        return answer.json()["id"], answer.json()["client_secret"].split("_secret_")[0]

    def test_the_service_page_settles_the_payment_through_its_webhooks(self):
        payment, intent = self.pay_3ds()
        page_url = f"{self.sandbox.url}/sandbox/3ds/{intent}/"
        self.assertIn("9.00 USD", requests.get(page_url, timeout=5).text)
        mark = len(self.stripe.events)
        done = requests.post(page_url, data={"action": "complete"}, timeout=5)
        self.assertIn("Authentication completed.", done.text)
        self.assertEqual(Payment.objects.get(pk=payment).status, "requires_action")  # not yet heard
        self.assertEqual(deliver_events(self, self.stripe, mark), 2)
        self.assertEqual(Payment.objects.get(pk=payment).status, "succeeded")

    def test_a_failed_challenge_fails_the_payment(self):
        payment, intent = self.pay_3ds()
        mark = len(self.stripe.events)
        requests.post(
            f"{self.sandbox.url}/sandbox/3ds/{intent}/", data={"action": "fail"}, timeout=5
        )
        deliver_events(self, self.stripe, mark)
        found = Payment.objects.get(pk=payment)
        self.assertEqual(
            (found.status, found.failure_code), ("failed", "payment_intent_authentication_failure")
        )

    def test_the_mobile_sdks_flow_against_the_service(self):
        """What docs/sandbox.md's curl walk-through does: PaymentSheet setup on the backend,
        the SDK's confirm with the publishable key on the service's Stripe, the challenge
        answered through the control API, the webhooks settling the payment."""
        sheet = self.client.post(reverse("payment-sheet"), {"amount": 1200}, format="json").json()
        secret = sheet["payment_intent_client_secret"]
        intent = secret.split("_secret_")[0]
        confirm = requests.post(
            f"{self.sandbox.url}/stripe/v1/payment_intents/{intent}/confirm",
            data={"client_secret": secret, "payment_method": "pm_card_threeDSecure2Required"},
            auth=(sheet["publishable_key"], ""),
            timeout=5,
        )
        self.assertEqual(confirm.json()["status"], "requires_action", confirm.text)
        refused = requests.get(
            f"{self.sandbox.url}/stripe/v1/customers",
            auth=(sheet["publishable_key"], ""),
            timeout=5,
        )
        self.assertEqual(refused.status_code, 401)
        self.assertIn("publishable API key", refused.json()["error"]["message"])
        done = requests.post(
            f"{self.sandbox.url}/control/3ds/{intent}", json={"result": "succeed"}, timeout=5
        )
        self.assertEqual(done.json()["status"], "succeeded")
        deliver_events(self, self.stripe)
        payment = self.client.get(reverse("payment-detail", args=[sheet["payment"]["id"]])).json()
        self.assertEqual((payment["status"], payment["card_last4"]), ("succeeded", "3220"))

    def test_next_action_points_at_the_services_page_with_a_return_url(self):
        created = stripe.PaymentIntent.create(
            amount=900, currency="usd", payment_method="pm_card_threeDSecure2Required",
            confirm=True, return_url="myapp://payment-done",
        )  # fmt: skip
        redirect = created.next_action.redirect_to_url
        self.assertEqual(redirect.return_url, "myapp://payment-done")
        self.assertTrue(
            redirect.url.startswith(f"{self.sandbox.url}/sandbox/3ds/{created.id}/?client_secret=")
        )
        self.assertEqual(
            stripe.PaymentIntent.retrieve(created.id).next_action.type, "redirect_to_url"
        )
