"""Settlement races (issue 19): a webhook delivered while the request settles, and a late
replay after refunds. Each journey ends with the ledger invariant.

The threaded test runs on every database: it orders the two threads' statements itself,
so no two transactions overlap on SQLite in memory (whose shared cache answers "table is
locked" at once instead of waiting).
"""

import threading

import stripe
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from fakes.service import start_service
from fakes.stripe.forwarding import WebhookForwarder
from payments.models import Payment, Refund
from payments.testing import (
    FakeStripe,
    FakeStripeHTTPClient,
    LedgerAssertionsMixin,
    fake_stripe,
    stripe_globals,
)
from payments.testing.forwarding import ForwardingEngine, wsgi_target
from payments.testing.service import NoSleepRequestsClient, SandboxServiceMixin, ServiceStripe
from payments.tests.helpers import expect_stripe_unavailable

User = get_user_model()
SECRET = "whsec_settlement_races"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
PAIRS = 30


class Interleaving:
    """Forces an order on a payment request and its `charge.succeeded` webhook.

    "read during": Stripe answers the request (the event is forwarded at once); the
    webhook reads the payment row and waits; the request settles, stores its answer and
    returns; then the webhook goes on and writes. "applied before": the webhook is
    applied in full between Stripe's answer and the request's own settlement.

    Each wait gives up after a second, so code that orders things differently (a lock
    taken earlier) is measured rather than deadlocked. The webhook's statements are
    watched with Django's `connection.execute_wrapper`.
    """

    WAIT = 1.0

    def __init__(self, order):
        self.order = order
        self.answered = threading.Event()  # Stripe answered POST /v1/charges
        self.read_started = threading.Event()
        self.webhook_read = threading.Event()
        self.webhook_done = threading.Event()
        self.request_done = threading.Event()

    def reset(self):
        for event in vars(self).values():
            if isinstance(event, threading.Event):
                event.clear()

    @property
    def happened(self):
        return (self.webhook_read if self.order == "read during" else self.webhook_done).is_set()

    def stripe_client(self, base, *args, **kwargs):
        """An instance of the stripe HTTP client class `base` that orders the two."""
        interleaving = self

        class Client(base):
            def request(self, method, url, headers, post_data=None, **kwargs):
                answer = super().request(method, url, headers, post_data, **kwargs)
                if method == "post" and url.endswith("/v1/charges"):
                    interleaving.answered.set()
                    if interleaving.order == "read during":
                        interleaving.webhook_read.wait(interleaving.WAIT)
                    else:
                        interleaving.webhook_done.wait(interleaving.WAIT)
                return answer

        return Client(*args, **kwargs)

    def watch_webhook(self, execute, sql, params, many, context):
        if self.order == "read during" and self.read_started.is_set():
            if not self.webhook_read.is_set():
                # The read is over once the webhook runs its next statement (SQLite keeps
                # a SELECT's table lock until its rows are fetched): the request goes on,
                # and this statement waits for it to finish.
                self.webhook_read.set()
                self.request_done.wait(self.WAIT)
        result = execute(sql, params, many, context)
        if self.answered.is_set() and not self.read_started.is_set():
            if sql.lstrip().upper().startswith("SELECT") and 'FROM "payments_payment"' in sql:
                self.read_started.set()
        return result


class Webhooks:
    """Events forwarded from a background thread as soon as the fake emits them, to this
    process's own webhook endpoint: what sandbox mode does (`stripe listen` in process)."""

    def __init__(self, test, interleaving):
        post = wsgi_target()

        def deliver(payload, signature):
            try:
                with connection.execute_wrapper(interleaving.watch_webhook):
                    return post(payload, signature)
            finally:
                connection.close()  # the forwarder's thread: never leave a connection open
                interleaving.webhook_done.set()

        self.forwarder = WebhookForwarder(deliver, SECRET, retry_delays=(0.05, 0.1, 0.2))
        test.addCleanup(self.forwarder.stop)
        self.engine = FakeStripe()
        test.enterContext(
            stripe_globals(
                default_http_client=interleaving.stripe_client(
                    FakeStripeHTTPClient, ForwardingEngine(self.engine, self.forwarder)
                ),
                api_key="sk_test_races",
            )
        )

    def wait(self):
        assert self.forwarder.wait_idle(30), "webhooks still being delivered"
        assert self.forwarder.failed == [], self.forwarder.failed


class ServiceWebhooks:
    """The same, with Stripe the sandbox service over HTTP: its own delivery threads
    forward each event the moment it is emitted (to this process's endpoint, in process)."""

    def __init__(self, test, interleaving):
        post = wsgi_target()

        def deliver(url, payload, signature):
            # The service may deliver before its answer has crossed the socket: the
            # interleaving starts once the client has heard it, as over a real network.
            interleaving.answered.wait(interleaving.WAIT)
            try:
                with connection.execute_wrapper(interleaving.watch_webhook):
                    return post(payload, signature), ""
            finally:
                connection.close()
                interleaving.webhook_done.set()

        self.running = start_service(
            forward_to="http://127.0.0.1/in-process", webhook_secret=SECRET,
            webhook_target=deliver, retry_delays=(0.05, 0.1, 0.2),
        )  # fmt: skip
        test.addCleanup(self.running.stop)
        self.engine = ServiceStripe(self.running.url)
        test.addCleanup(self.engine.close)
        test.enterContext(
            stripe_globals(
                api_base=self.running.url + "/stripe",
                default_http_client=interleaving.stripe_client(NoSleepRequestsClient, timeout=10),
                api_key="sk_test_races",
                max_network_retries=0,
            )
        )

    def wait(self):
        deliveries = self.running.service.deliveries
        assert deliveries.wait_idle(30), "webhooks still being delivered"
        assert deliveries.counts["pending"] == deliveries.counts["failed"] == 0, deliveries.counts


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET, PAYMENTS_THROTTLE="10000/hour")
class PayThenReplayWhileTheWebhookLandsTests(LedgerAssertionsMixin, TransactionTestCase):
    """`charge.succeeded` reaches the webhook while the payment request settles (real
    threads: the request's, and the forwarder's delivering the webhook); the replay that
    follows must get the stored answer: never 409, never a half-settled row."""

    webhooks_class = Webhooks

    def pay_then_replay(self, order):
        interleaving = Interleaving(order)
        webhooks = self.webhooks_class(self, interleaving)
        client = APIClient()
        client.force_authenticate(User.objects.create_user("ada"))
        bad, interleaved = [], 0
        for number in range(PAIRS):
            key, body = f"order-{number}", {**CARD, "amount": 500 + number}
            interleaving.reset()
            paid = client.post(reverse("payments"), body, format="json", HTTP_IDEMPOTENCY_KEY=key)
            interleaving.request_done.set()
            interleaved += interleaving.happened
            webhooks.wait()
            again = client.post(reverse("payments"), body, format="json", HTTP_IDEMPOTENCY_KEY=key)
            if paid.status_code != 201 or again.status_code != 201:
                bad.append((key, paid.status_code, again.status_code, again.content[:100]))
            elif again.json() != paid.json() or again.headers.get("Idempotent-Replayed") != "true":
                bad.append((key, "replay differs", paid.json(), again.json()))
        self.assertEqual(interleaved, PAIRS, f"the webhook was not {order} the request")
        self.assertEqual(bad, [], f"{len(bad)} bad replays of {PAIRS}")
        unsettled = Payment.objects.filter(response_body__isnull=True) | Payment.objects.exclude(
            locked_until=None
        )
        self.assertEqual(list(unsettled.values_list("pk", flat=True)), [])
        self.assertEqual(Payment.objects.filter(status="succeeded").count(), PAIRS)
        self.assertLedgerMatches(webhooks.engine, pending_ok=False)

    def test_the_webhook_reads_while_the_request_settles_and_writes_after(self):
        self.pay_then_replay("read during")

    def test_the_webhook_is_applied_before_the_request_settles(self):
        self.pay_then_replay("applied before")


def deliver(event):
    """A webhook event as the endpoint hands it on (signature checked there)."""
    from payments import events

    return events.record_event(stripe.Event.construct_from(event, "sk_test_races"))


@override_settings(PAYMENTS_THROTTLE="10000/hour")
class LateReplayAfterRefundsTests(LedgerAssertionsMixin, TestCase):
    """Stripe's idempotent replay answers the charge as it was first answered
    (amount_refunded 0). A client retrying long after (its first answer was lost) must not
    move a refunded payment back to succeeded."""

    def setUp(self):
        self.stripe = self.enterContext(fake_stripe())
        self.enterContext(stripe_globals(max_network_retries=0))  # the answer stays lost
        self.client = APIClient()
        self.client.force_authenticate(User.objects.create_user("ada"))
        self.staff = APIClient()
        self.staff.force_authenticate(User.objects.create_superuser("root"))

    def pay(self):
        return self.client.post(
            reverse("payments"), {**CARD, "amount": 1200}, format="json",
            HTTP_IDEMPOTENCY_KEY="order-late",
        )  # fmt: skip

    def test_a_late_replay_after_refunds_answers_the_refunded_payment(self):
        # The answer is lost after Stripe charged: the client sees 503, the row stays pending.
        self.stripe.faults.add("POST /v1/charges", "lost_response")
        with expect_stripe_unavailable(self):
            lost = self.pay()
        self.assertEqual(lost.status_code, 503, lost.content)
        payment = Payment.objects.get()
        self.assertEqual(payment.status, "pending")
        # Stripe's webhook settles it; staff refund it in full, in two parts.
        [event] = [e for e in self.stripe.events if e["type"] == "charge.succeeded"]
        deliver(event)
        url = reverse("payment-refund", args=[payment.pk])
        for amount in (500, 700):
            refunded = self.staff.post(url, {"amount": amount}, format="json")
            self.assertEqual(refunded.status_code, 200, refunded.content)
        self.assertEqual(Payment.objects.get().status, "refunded")

        # Much later the app retries with the same key: Stripe replays the original charge.
        replay = self.pay()
        self.assertEqual(replay.status_code, 201, replay.content)
        self.assertEqual(replay.json()["status"], "refunded")
        self.assertEqual(replay.json()["amount_refunded"], 1200)
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.amount_refunded), ("refunded", 1200))
        self.assertEqual(len(self.stripe.charges), 1)
        self.assertLedgerMatches(pending_ok=False)
        # And the stored answer a further retry gets is the same.
        self.assertEqual(self.pay().json(), replay.json())

    def test_an_old_charge_snapshot_never_lowers_the_refunded_amount(self):
        paid = self.pay()
        self.assertEqual(paid.status_code, 201, paid.content)
        url = reverse("payment-refund", args=[paid.json()["id"]])
        self.assertEqual(self.staff.post(url, {}, format="json").status_code, 200)
        # charge.succeeded, delivered late (a retry of Stripe's own delivery)
        [event] = [e for e in self.stripe.events if e["type"] == "charge.succeeded"]
        deliver({**event, "id": "evt_redelivered_late"})
        payment = Payment.objects.get()
        self.assertEqual((payment.status, payment.amount_refunded), ("refunded", 1200))
        self.assertEqual(Refund.objects.get().status, "succeeded")
        self.assertLedgerMatches(pending_ok=False)


class PayThenReplayOverHTTPTests(PayThenReplayWhileTheWebhookLandsTests):
    """The same races with the sandbox service as Stripe, over HTTP, forwarding itself."""

    webhooks_class = ServiceWebhooks


class LateReplayAfterRefundsOverHTTPTests(SandboxServiceMixin, LateReplayAfterRefundsTests):
    """The same journeys on the sandbox service over HTTP (faults through its control API)."""

    def setUp(self):
        super().setUp()
        self.enterContext(stripe_globals(max_network_retries=0))
