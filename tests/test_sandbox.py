import io
import tempfile
from datetime import timedelta
from pathlib import Path
from unittest import mock

import stripe
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import SimpleTestCase, TestCase, override_settings
from django.utils import timezone

from backend import sandbox
from notifications import testing as notification_fakes
from notifications.http import session
from payments.models import Payment
from payments.testing import shared_engine, stripe_globals


class SandboxTests(SimpleTestCase):
    def setUp(self):
        self.enterContext(stripe_globals())  # sandbox activation changes them for good
        adapters = dict(session.adapters)
        installed = set(notification_fakes._installed)

        def restore():
            session.adapters.clear()
            session.adapters.update(adapters)
            notification_fakes._installed.clear()
            notification_fakes._installed.update(installed)

        self.addCleanup(restore)

    @override_settings(
        DEBUG=True, STRIPE_SECRET_KEY="", STRIPE_API_BASE="", PUSH_AUTH_KEY="", TODOS_SANDBOX=True
    )
    def test_no_credentials_and_debug_runs_everything_on_fakes(self):
        with self.assertLogs("backend.sandbox", "WARNING") as logs:
            self.assertEqual(sandbox.activate(), ["stripe", "push", "todos"])
        self.assertIn("Sandbox mode", logs.output[0])
        self.assertEqual(sandbox.active_fakes(), ["stripe", "push", "todos"])
        charge = stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        self.assertEqual(charge.status, "succeeded")

    @override_settings(
        DEBUG=True,
        STRIPE_SECRET_KEY="sk_test_real",
        PUSH_AUTH_KEY="k",
        TODOS_API_URL="https://t.example/",
        TODOS_SANDBOX=False,
    )
    def test_configured_services_are_not_faked(self):
        self.assertEqual(sandbox.activate(), [])

    @override_settings(DEBUG=False, STRIPE_SECRET_KEY="")
    def test_never_with_debug_off(self):
        self.assertEqual(sandbox.wanted(), [])

    @override_settings(DEBUG=False)
    def test_production_check_refuses_an_active_fake(self):
        from backend import checks

        with mock.patch.object(stripe, "default_http_client", None):
            from payments.testing import install_sandbox

            install_sandbox()
            ids = [e.id for e in checks.production_configuration()]
        self.assertIn("backend.E004", ids)


class SharedStateCommandTests(TestCase):
    """Commands run in their own process and reach the server's Stripe through the state file."""

    def setUp(self):
        SandboxTests.setUp(self)
        directory = self.enterContext(tempfile.TemporaryDirectory())
        self.enterContext(
            override_settings(
                DEBUG=True,
                STRIPE_SECRET_KEY="",
                STRIPE_API_BASE="",
                STRIPE_WEBHOOK_SECRET="whsec_shared_state",
                SANDBOX_STATE=str(Path(directory) / "state.sqlite3"),
                SANDBOX_WEBHOOKS=False,
            )
        )
        self.addCleanup(shared_engine.reset)
        self.addCleanup(sandbox._active.clear)
        self.user = get_user_model().objects.create_user("shared")

    def charge_in_the_server(self, payment):
        """The server charged, but its answer was lost: only the sandbox state knows."""
        with self.assertLogs("backend.sandbox", "WARNING"):
            sandbox.activate()
        stripe.Charge.create(
            amount=payment.amount,
            currency="usd",
            source="tok_visa",
            metadata={"payment_id": str(payment.pk)},
        )
        shared_engine.reset()  # this process forgets; the command must read the state file

    def test_reconcile_payments_settles_from_the_shared_state(self):
        payment = Payment.objects.create(
            owner=self.user, amount=500, currency="usd", method="token"
        )
        self.charge_in_the_server(payment)
        Payment.objects.update(created_at=timezone.now() - timedelta(minutes=10))
        out = io.StringIO()
        with self.assertLogs("backend.sandbox", "WARNING"):
            call_command("reconcile_payments", stdout=out)
        payment.refresh_from_db()
        self.assertEqual((payment.status, payment.card_last4), ("succeeded", "4242"))
        self.assertIn("settled 1", out.getvalue())

    def test_settle_refunds_finishes_the_refund_test_cards(self):
        with self.assertLogs("backend.sandbox", "WARNING"):
            sandbox.activate()
        token = stripe.Token.create(
            card={"number": "4000000000007726", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        )
        charge = stripe.Charge.create(amount=900, currency="usd", source=token.id)
        refund = stripe.Refund.create(charge=charge.id, amount=900)
        self.assertEqual(refund.status, "pending")
        out = io.StringIO()
        with self.assertLogs("backend.sandbox", "WARNING"):
            call_command("sandbox", "settle-refunds", stdout=out)
        self.assertIn(f"{refund.id}: succeeded", out.getvalue())
        self.assertEqual(stripe.Refund.retrieve(refund.id).status, "succeeded")
