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


class StripeKeyCheckTests(SimpleTestCase):
    """The key in STRIPE_SECRET_KEY is a secret key, and not a live one in development
    (issue 19, #7). An ordinary check: runserver, migrate and check run it, DEBUG or not."""

    def ids(self, **overrides):
        with override_settings(**overrides):
            return [error.id for error in checks.stripe_keys()]

    def test_a_publishable_key_as_the_secret_key_is_refused_in_any_mode(self):
        for key in ("pk_test_51Habc", "pk_live_51Habc"):
            for debug in (True, False):
                with self.subTest(key=key, debug=debug):
                    with override_settings(STRIPE_SECRET_KEY=key, DEBUG=debug):
                        errors = checks.stripe_keys()
                    self.assertEqual([e.id for e in errors], ["backend.E005"])
                    self.assertIn("publishable", errors[0].msg)
                    self.assertNotIn(key, errors[0].msg + errors[0].hint)  # never the key

    def test_a_live_key_with_debug_on_is_refused(self):
        for key in ("sk_live_51Habc", "rk_live_51Habc"):
            with self.subTest(key):
                with override_settings(STRIPE_SECRET_KEY=key, DEBUG=True):
                    errors = checks.stripe_keys()
                self.assertEqual([e.id for e in errors], ["backend.E006"])
                self.assertIn("DEBUG", errors[0].msg)
                self.assertNotIn(key, errors[0].msg + errors[0].hint)
                self.assertEqual(self.ids(STRIPE_SECRET_KEY=key, DEBUG=False), [])

    def test_test_keys_restricted_keys_and_sandbox_pass(self):
        for key in ("sk_test_51Habc", "rk_test_51Habc", ""):
            for debug in (True, False):
                with self.subTest(key=key, debug=debug):
                    self.assertEqual(self.ids(STRIPE_SECRET_KEY=key, DEBUG=debug), [])

    def test_a_secret_key_as_the_publishable_key_is_refused(self):
        # STRIPE_PUBLISHABLE_KEY goes to every app with each PaymentSheet.
        for key in ("sk_live_51Habc", "sk_test_51Habc", "rk_live_51Habc", "rk_test_51Habc"):
            with self.subTest(key):
                self.assertEqual(
                    self.ids(STRIPE_PUBLISHABLE_KEY=key, STRIPE_SECRET_KEY="sk_test_x"),
                    ["backend.E007"],
                )
        self.assertEqual(self.ids(STRIPE_PUBLISHABLE_KEY="pk_live_51Habc"), [])

    def test_manage_py_check_refuses_them(self):
        for overrides in (
            {"STRIPE_SECRET_KEY": "pk_test_51Habc"},
            {"STRIPE_SECRET_KEY": "sk_live_51Habc", "DEBUG": True},
        ):
            with self.subTest(overrides), override_settings(**overrides):
                with self.assertRaisesMessage(SystemCheckError, "STRIPE_SECRET_KEY"):
                    call_command("check", stdout=open("/dev/null", "w"))

    def test_ci_check_deploy_configuration_passes(self):
        # .ci/run: check --deploy with STRIPE_SECRET_KEY=sk_live_ci_placeholder, DEBUG=false
        with override_settings(**{**PRODUCTION, "STRIPE_SECRET_KEY": "sk_live_ci_placeholder"}):
            self.assertEqual(checks.stripe_keys(), [])
            self.assertEqual(checks.production_configuration(), [])

    def test_the_entry_points_refuse_to_start_with_them(self):
        with override_settings(**{**PRODUCTION, "STRIPE_SECRET_KEY": "pk_live_51Habc"}):
            with self.assertRaisesMessage(ImproperlyConfigured, "backend.E005"):
                checks.refuse_unsafe_start()
        with override_settings(STRIPE_SECRET_KEY="sk_live_51Habc", DEBUG=True):
            with self.assertRaisesMessage(ImproperlyConfigured, "backend.E006"):
                checks.refuse_unsafe_start()
