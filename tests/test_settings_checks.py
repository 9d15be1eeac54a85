from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, override_settings

from backend import checks

PRODUCTION = {
    "DEBUG": False,
    "SECRET_KEY": "p" * 60,
    "STRIPE_SECRET_KEY": "sk_live_configured",
    "STRIPE_WEBHOOK_SECRET": "whsec_configured",
    "PUSH_AUTH_KEY": "push-key",
    "PUSH_APPLICATION": "ABCDE-12345",
    "TODOS_API_URL": "https://todos.example.com/",
    "STRIPE_API_BASE": "",
}


class ProductionCheckTests(SimpleTestCase):
    @override_settings(**PRODUCTION)
    def test_a_complete_production_configuration_passes(self):
        self.assertEqual(checks.production_configuration(), [])
        checks.refuse_unsafe_start()

    @override_settings(
        **{**PRODUCTION, "SECRET_KEY": "django-insecure-development-key-do-not-use-in-production"}
    )
    def test_the_development_secret_key_is_refused(self):
        ids = [e.id for e in checks.production_configuration()]
        self.assertEqual(ids, ["backend.E001"])
        with self.assertRaises(SystemCheckError):
            call_command("check", "--deploy", stdout=open("/dev/null", "w"))

    @override_settings(**{**PRODUCTION, "STRIPE_SECRET_KEY": ""})
    def test_missing_provider_credentials_are_refused(self):
        errors = checks.production_configuration()
        self.assertEqual([e.id for e in errors], ["backend.E002"])
        self.assertIn("STRIPE_SECRET_KEY", errors[0].msg)
        with self.assertRaisesMessage(ImproperlyConfigured, "Refusing to start"):
            checks.refuse_unsafe_start()

    @override_settings(**{**PRODUCTION, "STRIPE_API_BASE": "http://127.0.0.1:8765/stripe"})
    def test_a_redirected_stripe_api_base_is_refused(self):
        self.assertEqual([e.id for e in checks.production_configuration()], ["backend.E003"])

    def import_entry_point(self, name):
        import importlib
        import sys

        sys.modules.pop(name, None)
        self.addCleanup(sys.modules.pop, name, None)
        return importlib.import_module(name)

    def test_the_wsgi_and_asgi_entry_points_refuse_an_unsafe_start(self):
        for name in ("backend.wsgi", "backend.asgi"):
            with override_settings(**{**PRODUCTION, "STRIPE_WEBHOOK_SECRET": ""}):
                with self.assertRaisesMessage(ImproperlyConfigured, "STRIPE_WEBHOOK_SECRET"):
                    self.import_entry_point(name)
            with override_settings(**PRODUCTION):
                self.assertTrue(callable(self.import_entry_point(name).application))

    @override_settings(DEBUG=True)
    def test_development_is_not_checked(self):
        self.assertEqual(checks.production_configuration(), [])
