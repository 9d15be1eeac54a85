"""Sandbox mode on the Django side: the settings that point the clients at the sandbox
service, and the commands that talk to it (the service itself: test_sandbox_service.py)."""

import io
import json
import os
import socket
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import stripe
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import SimpleTestCase, TestCase, override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APITestCase

from backend import checks
from backend.sandbox import backend_environment
from fakes.service import start_service
from fakes.stripe import stripe_globals
from notifications.http import session
from payments.models import Payment

ROOT = Path(__file__).resolve().parent.parent
User = get_user_model()


def settings_in_a_process(**environment):
    """The settings a fresh process computes from this environment (no test overrides)."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k) for k in ('STRIPE_SECRET_KEY', 'STRIPE_API_BASE',"
        " 'PUSH_API_URL', 'PUSH_APPLICATION', 'PUSH_AUTH_KEY', 'TODOS_API_URL',"
        " 'SANDBOX_SERVICES', 'SANDBOX_URL')}))"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "PUSH_", "TODOS_", "SANDBOX_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="backend.settings", **environment)
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


class SandboxSettingsTests(SimpleTestCase):
    databases = {"default"}  # /api/health/ asks the database

    def test_debug_without_credentials_points_every_client_at_the_service(self):
        found = settings_in_a_process(DEBUG="true", SANDBOX_URL="http://127.0.0.1:9911")
        self.assertEqual(found["SANDBOX_SERVICES"], ["stripe", "push", "todos"])
        self.assertEqual(found["STRIPE_SECRET_KEY"], "sk_test_sandbox")  # a test key, as Stripe's
        self.assertEqual(found["STRIPE_API_BASE"], "http://127.0.0.1:9911/stripe")
        self.assertEqual(found["PUSH_API_URL"], "http://127.0.0.1:9911/push/")
        self.assertEqual(
            (found["PUSH_APPLICATION"], found["PUSH_AUTH_KEY"]),
            ("FAKE0-00000", "fake-push-auth-key"),
        )
        self.assertEqual(found["TODOS_API_URL"], "http://127.0.0.1:9911/todos-api/")

    def test_configured_providers_and_production_are_left_alone(self):
        found = settings_in_a_process(
            DEBUG="true", STRIPE_SECRET_KEY="sk_test_real", PUSH_AUTH_KEY="k",
            PUSH_APPLICATION="APP", TODOS_API_URL="https://todos.example/",
        )  # fmt: skip
        self.assertEqual(found["SANDBOX_SERVICES"], [])
        self.assertEqual(found["STRIPE_API_BASE"], "")
        self.assertEqual(found["PUSH_API_URL"], "https://api.pushwoosh.com/json/1.3/")
        self.assertEqual(settings_in_a_process(DEBUG="false")["SANDBOX_SERVICES"], [])

    def test_a_backend_started_by_serve_gets_the_service_and_its_secret(self):
        environment = backend_environment(
            "http://127.0.0.1:8001",
            "whsec_x",
            base={"STRIPE_SECRET_KEY": "sk_live_no", "PATH": "/bin"},
        )
        self.assertEqual(environment["SANDBOX_URL"], "http://127.0.0.1:8001")
        self.assertEqual(environment["STRIPE_WEBHOOK_SECRET"], "whsec_x")
        self.assertNotIn("STRIPE_SECRET_KEY", environment)  # never a real key into a sandbox
        self.assertEqual(environment["PATH"], "/bin")

    @override_settings(DEBUG=False, SANDBOX_SERVICES=["stripe"])
    def test_production_refuses_a_sandboxed_provider(self):
        self.assertIn("backend.E004", [e.id for e in checks.production_configuration()])

    @override_settings(SANDBOX_SERVICES=["stripe", "push"], SANDBOX_URL="http://127.0.0.1:8765")
    def test_health_names_the_service(self):
        body = self.client.get(reverse("health")).json()
        self.assertEqual(body["sandbox"], ["stripe", "push"])
        self.assertEqual(body["sandbox_url"], "http://127.0.0.1:8765")


class CommandTestCase(TestCase):
    """A sandbox service in a thread; the commands and the backend's clients reach it over
    HTTP, as in sandbox mode (SANDBOX_URL and the provider settings pointing there)."""

    def setUp(self):
        self.running = start_service()
        self.addCleanup(self.running.stop)
        url = self.running.url
        self.service = self.running.service
        self.enterContext(
            override_settings(
                SANDBOX_URL=url,
                SANDBOX_SERVICES=["stripe", "push", "todos"],
                PUSH_API_URL=f"{url}/push/",
                PUSH_APPLICATION="FAKE0-00000",
                PUSH_AUTH_KEY="fake-push-auth-key",
                TODOS_API_URL=f"{url}/todos-api/",
                PAYMENTS_THROTTLE="1000/hour",
            )
        )
        # The default test fakes step aside: the real clients, at the service.
        for prefix in list(session.adapters):
            if "fake.invalid" in prefix:
                adapter = session.adapters.pop(prefix)
                self.addCleanup(session.mount, prefix, adapter)
        self.enterContext(
            stripe_globals(
                api_base=f"{url}/stripe",
                api_key="sk_test_sandbox",
                default_http_client=stripe.RequestsClient(timeout=10),
                max_network_retries=0,
            )
        )

    def command(self, *args):
        out = io.StringIO()
        call_command("sandbox", *args, stdout=out)
        return out.getvalue()


class SandboxCommandTests(CommandTestCase, APITestCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("ada")
        self.client.force_authenticate(self.user)

    def pay(self, **extra):
        body = {
            "number": "4242424242424242",
            "exp_month": 12,
            "exp_year": 2034,
            "cvc": "123",
            "amount": 500,
        }
        return self.client.post(reverse("payments"), {**body, **extra}, format="json")

    def test_status_reset_and_payments_through_the_service(self):
        self.assertEqual(self.pay().status_code, 201)
        out = self.command("status")
        self.assertIn(self.running.url, out)
        self.assertIn("stripe: 1 charges", out)
        self.assertIn('"charge": 1', self.command("status", "--json"))
        self.assertIn("Reset", self.command("reset"))
        self.assertEqual(self.service.stripe.charges, [])

    def test_push_devices_register_after_status_on_a_fresh_sandbox(self):
        # The old cross-process store saved the push fake's test credentials into the state on
        # `sandbox status`, and every registration failed after (issue 21).
        self.command("status")
        answer = self.client.post(
            reverse("devices"), {"push_token": "tok-1", "platform": "ios"}, format="json"
        )
        self.assertEqual(answer.status_code, 201, answer.content)
        self.assertEqual(len(self.service.push.devices), 1)

    def test_a_fault_from_the_command_line_strikes_and_clears(self):
        out = self.command("fault", "stripe", "POST", "/v1/charges", "5xx", "--times", "2")
        self.assertIn("stripe POST /v1/charges: api_error", out)
        with self.assertLogs("payments", "WARNING"), self.assertLogs("django.request", "WARNING"):
            self.assertEqual(self.pay().status_code, 503)
        self.assertIn("none", self.command("fault", "clear"))
        self.assertEqual(self.pay().status_code, 201)
        with self.assertRaisesMessage(CommandError, "missing"):
            self.command("fault", "stripe", "POST")
        with self.assertRaisesMessage(CommandError, "Kind is one of"):
            self.command("fault", "stripe", "POST", "/v1/charges", "explode")
        with self.assertRaisesMessage(CommandError, "one service, or none"):
            self.command("fault", "clear", "stripe", "push")

    def test_clock_trigger_settle_and_redeliver(self):
        self.assertIn("Sandbox time:", self.command("clock"))
        out = self.command("clock", "advance", "2h")
        self.assertIn("(+7200 s)", out)
        self.assertIn("reminders due at that time", out)
        self.assertIn("charge.refunded", self.command("trigger", "--list"))
        out = self.command("trigger", "charge.refunded")
        self.assertIn("Triggered charge.refunded", out)
        self.assertIn("charge.refunded", self.command("events"))
        self.assertIn("settled 0 refunds", self.command("settle-refunds"))
        event = self.service.events(limit=1)[0]["id"]
        with self.assertRaisesMessage(CommandError, "No webhook endpoint"):
            self.command("redeliver", event)

    def test_reconcile_reads_the_services_records(self):
        # The server charged, but its answer was lost: only Stripe (the service) knows.
        payment = Payment.objects.create(
            owner=self.user, amount=500, currency="usd", method="token"
        )
        stripe.Charge.create(
            amount=500, currency="usd", source="tok_visa", metadata={"payment_id": str(payment.pk)}
        )
        Payment.objects.update(created_at=timezone.now() - timedelta(minutes=10))
        out = io.StringIO()
        call_command("reconcile_payments", stdout=out)
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.card_last4), ("succeeded", "4242"))
        self.assertIn("settled 1", out.getvalue())

    def test_a_command_without_a_service_says_how_to_start_one(self):
        self.running.stop()
        with self.assertRaisesMessage(CommandError, "fakeservices"):
            self.command("status")


class FakeservicesCommandTests(SimpleTestCase):
    def test_refusals(self):
        with self.assertRaisesMessage(CommandError, "add --forward-to"):
            call_command("fakeservices", "--webhook-secret", "whsec_x", "--state", "memory")
        with self.assertRaisesMessage(CommandError, "--console-password"):
            call_command("fakeservices", "--bind", "0.0.0.0", "--port", "0", "--state", "memory")

    def test_bad_ports_and_state_are_clear_errors_before_anything_starts(self):
        with self.assertRaisesMessage(CommandError, "--port is a port, 0-65535 (got 70000)"):
            call_command("fakeservices", "--port", "70000", "--state", "memory")
        with tempfile.NamedTemporaryFile() as not_a_folder:
            with self.assertRaisesMessage(CommandError, "cannot keep the state in"):
                call_command("fakeservices", "--port", "0", "--state", not_a_folder.name)
        for port in ("0", "70000"):
            with self.subTest(port=port):
                with self.assertRaisesMessage(CommandError, "--port is a port, 1-65535"):
                    call_command("sandbox", "serve", "--port", port, "--no-migrate")
        with self.assertRaisesMessage(CommandError, "two ports"):
            call_command("sandbox", "serve", "--port", "18765", "--service-port", "18765", "--no-migrate")  # fmt: skip
        with socket.socket() as taken, socket.socket() as free:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            free.bind(("127.0.0.1", 0))
            port, backend_port = str(taken.getsockname()[1]), str(free.getsockname()[1])
            free.close()
            # (its readiness check would have reached the other server and said "ready")
            with self.assertRaisesMessage(CommandError, f"--service-port {port} on 127.0.0.1 is taken"):  # fmt: skip
                call_command("sandbox", "serve", "--port", backend_port, "--service-port", port, "--no-migrate")  # fmt: skip

    def test_a_bad_delay_is_refused_before_the_service_is_asked(self):
        # (NaN once reached the JSON encoder, and was reported as "the service does not answer")
        for delay in ("nan", "inf", "0", "601", "soon"):
            with self.subTest(delay=delay), self.assertRaisesMessage(CommandError, "--delay"):
                call_command("sandbox", "fault", "stripe", "POST", "/v1/charges", "slow", "--delay", delay)  # fmt: skip

    def test_serve_refuses_beyond_loopback_without_a_password(self):
        with (
            override_settings(SANDBOX_CONSOLE_PASSWORD=""),
            self.assertRaisesMessage(CommandError, "SANDBOX_CONSOLE_PASSWORD"),
        ):
            call_command("sandbox", "serve", "--bind", "0.0.0.0", "--no-migrate")
