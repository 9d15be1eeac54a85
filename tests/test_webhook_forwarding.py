"""Webhook forwarding: every event the fake Stripe emits reaches the backend, signed,
asynchronously, retried until acknowledged (as `stripe listen --forward-to` does)."""

import io
import threading

import requests
import stripe
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import (
    LiveServerTestCase,
    SimpleTestCase,
    TestCase,
    TransactionTestCase,
    override_settings,
)
from django.urls import reverse

from fakes.service import start_service
from fakes.service.webhooks import http_post
from fakes.stripe.forwarding import WebhookForwarder, http_target
from payments.models import Payment, StripeEvent
from payments.testing import FakeStripe, FakeStripeHTTPClient, stripe_globals
from payments.testing.forwarding import ForwardingEngine, wsgi_target

User = get_user_model()
SECRET = "whsec_forwarding_tests"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


def sandbox_client(forwarder, engine=None):
    """The stripe library on an engine whose events go to `forwarder`."""
    wrapper = ForwardingEngine(engine or FakeStripe(), forwarder)
    context = stripe_globals(
        default_http_client=FakeStripeHTTPClient(wrapper), api_key="sk_test_forwarding"
    )
    return wrapper, context


class ForwarderTests(SimpleTestCase):
    def test_delivers_signed_events_and_retries_until_acknowledged(self):
        received, answers = [], iter([500, ConnectionError("down"), 200])

        def target(payload, signature):
            received.append(stripe.Webhook.construct_event(payload, signature, SECRET))
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer

        forwarder = WebhookForwarder(target, SECRET, retry_delays=(0.01, 0.01, 0.01))
        wrapper, context = sandbox_client(forwarder)
        with context, self.assertLogs("fakes.stripe.forwarding", "WARNING") as logs:
            stripe.Customer.create(email="a@example.com")
            self.assertTrue(forwarder.wait_idle(5))
        self.assertEqual(len(logs.output), 2)
        forwarder.stop()
        [event] = wrapper.engine.events
        self.assertEqual([e["id"] for e in received], [event["id"]] * 3)  # two failures, then ok
        self.assertEqual(received[0]["type"], "customer.created")
        self.assertEqual(forwarder.delivered, [event["id"]])
        self.assertEqual(wrapper.engine.delivered, {event["id"]})
        self.assertEqual(forwarder.failed, [])

    def test_gives_up_after_the_last_retry(self):
        forwarder = WebhookForwarder(lambda payload, signature: 503, SECRET, retry_delays=(0.01,))
        with self.assertLogs("fakes.stripe.forwarding", "WARNING") as logs:
            forwarder.enqueue([{"id": "evt_1", "type": "x"}])
            self.assertTrue(forwarder.wait_idle(5))
        forwarder.stop()
        self.assertEqual(forwarder.failed, [("evt_1", 503)])
        self.assertEqual(forwarder.attempts, 2)
        self.assertIn("giving up", logs.output[-1])

    def test_delivery_is_asynchronous(self):
        release = threading.Event()

        def slow_target(payload, signature):
            release.wait(5)
            return 200

        forwarder = WebhookForwarder(slow_target, SECRET)
        _, context = sandbox_client(forwarder)
        with context:
            stripe.Charge.create(amount=500, currency="usd", source="tok_visa")  # not blocked
        self.assertEqual(forwarder.delivered, [])
        release.set()
        self.assertTrue(forwarder.wait_idle(5))
        forwarder.stop()
        self.assertEqual(len(forwarder.delivered), 1)

    def test_only_loopback_urls(self):
        with self.assertRaisesMessage(ValueError, "loopback only"):
            http_target("https://hooks.example.com/")


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
class ForwardToTheBackendTests(LiveServerTestCase):
    def test_the_service_forwards_to_a_running_backend(self):
        """The service (`fakeservices --forward-to URL`) POSTs each event, signed, to a
        backend that reaches it over HTTP like any Stripe."""
        # The live server and this test share one SQLite-in-memory connection, whose
        # savepoints do not mix across threads: hold the deliveries until the payment
        # request is done (a file database, as in the sandbox, needs no such care).
        request_done = threading.Event()

        def after_the_request(url, payload, signature):
            request_done.wait(10)
            with requests.Session() as http:
                return http_post(url, payload, signature, http)

        url = self.live_server_url + reverse("stripe-webhook")
        running = start_service(
            forward_to=url, webhook_secret=SECRET, webhook_target=after_the_request,
            retry_delays=(0.1,),
        )  # fmt: skip
        self.addCleanup(running.stop)
        user = User.objects.create_user("ada")
        self.client.force_login(user)
        with stripe_globals(
            api_base=running.url + "/stripe",
            api_key="sk_test_local",
            default_http_client=stripe.RequestsClient(timeout=5),
        ):
            answer = self.client.post(
                reverse("payments"), {**CARD, "amount": 700}, content_type="application/json"
            )
        request_done.set()
        self.assertEqual(answer.status_code, 201, answer.content)
        self.assertTrue(running.service.deliveries.wait_idle(10))
        events = running.service.events(limit=100)
        self.assertEqual(
            set(StripeEvent.objects.values_list("event_id", flat=True)), {e["id"] for e in events}
        )
        self.assertEqual({e["delivery"]["status"] for e in events}, {"delivered"})
        self.assertEqual(
            StripeEvent.objects.get(type="charge.succeeded").payment, Payment.objects.get()
        )


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
class InProcessForwardingTests(TransactionTestCase):
    def test_sandbox_mode_delivers_to_its_own_endpoint_with_no_socket(self):
        # The test database is SQLite in memory (shared cache), whose table locks do not
        # wait: hold the deliveries until the payment request is done (a file database,
        # as in the sandbox, waits for the lock instead).
        request_done, post = threading.Event(), wsgi_target()

        def after_the_request(payload, signature):
            request_done.wait(10)
            return post(payload, signature)

        forwarder = WebhookForwarder(after_the_request, SECRET, retry_delays=(0.1,))
        self.addCleanup(forwarder.stop)
        wrapper, context = sandbox_client(forwarder)
        user = User.objects.create_user("ada")
        self.client.force_login(user)
        with context:
            answer = self.client.post(
                reverse("payments"), {**CARD, "amount": 900}, content_type="application/json"
            )
        request_done.set()
        self.assertEqual(answer.status_code, 201, answer.content)
        self.assertTrue(forwarder.wait_idle(10))
        self.assertEqual(forwarder.failed, [])
        event = StripeEvent.objects.get(type="charge.succeeded")
        self.assertEqual(event.payment, Payment.objects.get())
        self.assertEqual(wrapper.engine.delivered, {e["id"] for e in wrapper.engine.events})


class FakeServicesOptionsTests(SimpleTestCase):
    def test_webhook_secret_needs_forward_to(self):
        with self.assertRaisesMessage(CommandError, "--forward-to"):
            call_command("fakeservices", "--port", "0", "--webhook-secret", "whsec_x")

    def test_forward_to_is_an_http_url(self):
        with self.assertRaisesMessage(CommandError, "http(s) URL"):
            call_command(
                "fakeservices", "--port", "0", "--state", "memory", "--forward-to", "ftp://x/h",
                stdout=io.StringIO(),
            )  # fmt: skip


class RefundRaceTests(TestCase):
    """With webhooks forwarded at once, charge.refunded can land before the refund request
    records its own answer: the payment must show Stripe's figure, not twice the refund."""

    def test_a_webhook_that_wins_the_race_is_not_added_twice(self):
        from unittest import mock

        from backend.testing import fakes
        from payments import events

        admin = User.objects.create_superuser("root", password="correct-horse-battery-42")
        self.client.force_login(admin)
        paid = self.client.post(
            reverse("payments"), {**CARD, "amount": 1000}, content_type="application/json"
        )
        real_create = stripe.Refund.create

        def refund_then_webhook(**kwargs):
            refund = real_create(**kwargs)
            [event] = [e for e in fakes().stripe.events if e["type"] == "charge.refunded"][-1:]
            events.apply_event(event)  # the webhook, delivered before the request goes on
            return refund

        url = reverse("payment-refund", args=[paid.json()["id"]])
        with mock.patch("stripe.Refund.create", refund_then_webhook):
            first = self.client.post(url, {"amount": 300}, content_type="application/json")
            second = self.client.post(url, {"amount": 300}, content_type="application/json")
        self.assertEqual(first.json()["amount_refunded"], 300)
        self.assertEqual(second.json()["amount_refunded"], 600)
        self.assertEqual(Payment.objects.get().amount_refunded, 600)
