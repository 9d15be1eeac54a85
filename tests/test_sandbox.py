from unittest import mock

import stripe
from django.test import SimpleTestCase, override_settings

from backend import sandbox
from notifications import testing as notification_fakes
from notifications.http import session
from payments.testing import stripe_globals


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
