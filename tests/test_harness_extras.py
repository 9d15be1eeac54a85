"""Harness behaviours beyond single requests: threads, live webhook delivery, decorator use."""

import threading

import stripe
from django.contrib.auth import get_user_model
from django.test import LiveServerTestCase, SimpleTestCase, TestCase, override_settings
from django.urls import reverse

from payments.models import Payment, StripeEvent
from payments.testing import FakeStripe, current_engine, deliver_events, fake_stripe

User = get_user_model()


class EngineThreadSafetyTests(SimpleTestCase):
    def test_concurrent_clients_get_distinct_objects_and_no_lost_updates(self):
        engine = FakeStripe()
        errors = []

        def work():
            try:
                for _ in range(25):
                    stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
            except Exception as error:  # surfaced by the assertion below
                errors.append(error)

        with fake_stripe(engine):
            threads = [threading.Thread(target=work) for _ in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        self.assertEqual(errors, [])
        charges = engine.charges
        self.assertEqual(len(charges), 200)
        self.assertEqual(len({c["id"] for c in charges}), 200)
        self.assertEqual(len([e for e in engine.events if e["type"] == "charge.succeeded"]), 200)

    def test_reset_forgets_everything(self):
        engine = FakeStripe()
        with fake_stripe(engine):
            stripe.Charge.create(amount=500, currency="usd", source="tok_visa", idempotency_key="k")
        engine.reset()
        self.assertEqual((engine.objects, engine.events, engine.requests), ({}, [], []))


class DecoratorTests(SimpleTestCase):
    @fake_stripe()
    def test_fake_stripe_as_a_decorator(self):
        charge = stripe.Charge.create(amount=500, currency="usd", source="tok_amex")
        self.assertEqual(
            current_engine().get(charge.id)["payment_method_details"]["card"]["brand"], "amex"
        )

    def test_the_decorator_restores_the_real_client(self):
        before = stripe.default_http_client
        self.test_fake_stripe_as_a_decorator()
        self.assertIs(stripe.default_http_client, before)


@override_settings(STRIPE_WEBHOOK_SECRET="whsec_live_delivery")
class WebhookDeliveryTests(LiveServerTestCase):
    """The fake posts its events, signed, to the running backend over real HTTP (loopback)."""

    def test_events_are_delivered_once_and_applied(self):
        user = User.objects.create_user("live")
        with fake_stripe() as engine:
            payment = Payment.objects.create(owner=user, amount=800, currency="usd", method="token")
            stripe.Charge.create(
                amount=800, currency="usd", source="tok_visa", metadata={"payment_id": payment.pk}
            )
            url = self.live_server_url + reverse("stripe-webhook")
            first = deliver_events(url, "whsec_live_delivery", engine)
            second = deliver_events(url, "whsec_live_delivery", engine)
        self.assertEqual([status for _, status in first], [200])
        self.assertEqual(second, [], "delivered events are not sent again")
        payment.refresh_from_db()
        self.assertEqual(payment.status, "succeeded")
        self.assertEqual(StripeEvent.objects.get().type, "charge.succeeded")

    def test_delivery_only_to_loopback(self):
        with self.assertRaisesMessage(ValueError, "loopback only"):
            deliver_events("https://hooks.example.com/stripe/", "whsec_x", FakeStripe())


class AdminTests(TestCase):
    def test_staff_see_payments_with_money_fields_read_only(self):
        admin = User.objects.create_superuser("root", password="correct-horse-battery-42")
        payment = Payment.objects.create(owner=admin, amount=500, currency="usd", method="card")
        self.client.force_login(admin)
        page = self.client.get(reverse("admin:payments_payment_change", args=[payment.pk]))
        self.assertEqual(page.status_code, 200)
        self.assertNotContains(page, 'name="amount"')
        self.assertContains(page, "500")
        self.assertEqual(self.client.get(reverse("admin:payments_payment_add")).status_code, 403)


class FakeServicesCommandTests(SimpleTestCase):
    def test_a_taken_port_is_a_clear_error(self):
        import socket

        from django.core.management import CommandError, call_command

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            with self.assertRaisesMessage(CommandError, f"cannot listen on 127.0.0.1:{port}"):
                call_command("fakeservices", port=port)

    def test_default_mounts_serve_all_three_fakes(self):
        import requests

        from backend.fakeservices import start_fake_services

        server = start_fake_services()
        self.addCleanup(server.stop)
        self.assertEqual(sorted(server.mounts), ["/push", "/stripe", "/todos-api"])
        self.assertEqual(requests.get(server.url + "/todos-api/todos/1", timeout=5).json()["id"], 1)
        unauthenticated = requests.get(server.url + "/stripe/v1/charges", timeout=5)
        self.assertEqual(unauthenticated.status_code, 401)
        self.assertIn("did not provide an API key", unauthenticated.json()["error"]["message"])


class FaultPlanTests(SimpleTestCase):
    def test_faults_match_exact_prefix_and_any_endpoint_for_n_calls(self):
        from fakes.contract import FaultPlan, TransportFault

        plan = FaultPlan()
        plan.add("POST /v1/charges", "api_error", times=2)
        plan.add("GET /v1/*", "rate_limit")
        plan.add("*", "timeout")
        self.assertEqual(plan.take("POST", "/v1/tokens"), "timeout")  # only "*" matches
        self.assertEqual(plan.take("POST", "/v1/charges"), "api_error")
        self.assertEqual(plan.take("GET", "/v1/events"), "rate_limit")
        self.assertEqual(plan.before_request("POST", "/v1/charges"), "api_error")
        self.assertIsNone(plan.take("POST", "/v1/charges"))
        self.assertEqual(len(plan), 0)
        plan.add("*", "connection_error")
        with self.assertRaises(TransportFault):
            plan.before_request("GET", "/anything")
        with self.assertRaisesMessage(ValueError, "unknown fault"):
            plan.add("*", "gremlins")
