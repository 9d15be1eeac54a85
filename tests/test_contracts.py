"""Live contract tests: the fakes' shapes against the real services.

Skipped unless REAL_NETWORK_TESTS=1 (the seed's SKIP_REAL idea, inverted so the
default is safe); the Stripe one also needs STRIPE_LIVE_TEST_KEY=sk_test_...
"""

import unittest
import unittest.mock

import stripe
from django.conf import settings
from django.test import SimpleTestCase, override_settings

from backend.testing import real_network
from notifications import todos
from notifications.testing import fake_todos
from payments.testing import fake_stripe


@real_network("compares the fake todo API with JSONPlaceholder")
class TodoContractTests(SimpleTestCase):
    def test_todo_and_user_keys_match(self):
        with override_settings(TODOS_API_URL=todos.PUBLIC_TODOS_API):
            real_todo = todos.get_todos().json()[0]
            real_user = todos.get_users().json()[0]
        with fake_todos():
            fake_todo = todos.get_todos().json()[0]
            fake_user = todos.get_users().json()[0]
        self.assertEqual(set(real_todo), set(fake_todo))
        self.assertEqual(set(real_user), set(fake_user))


@real_network("runs card scenarios against Stripe's test mode")
@unittest.skipUnless(
    settings.STRIPE_LIVE_TEST_KEY.startswith("sk_test_"), "set STRIPE_LIVE_TEST_KEY=sk_test_..."
)
class StripeContractTests(SimpleTestCase):
    SCENARIOS = [
        "tok_visa",
        "tok_chargeDeclined",
        "tok_chargeDeclinedInsufficientFunds",
        "tok_chargeDeclinedExpiredCard",
    ]

    def outcome(self, source):
        try:
            charge = stripe.Charge.create(amount=500, currency="usd", source=source)
            return ("ok", sorted(charge.to_dict()))
        except stripe.CardError as error:
            return (error.code, error.error.decline_code)

    def test_outcomes_match(self):
        with unittest.mock.patch.object(stripe, "api_key", settings.STRIPE_LIVE_TEST_KEY):
            real = {s: self.outcome(s) for s in self.SCENARIOS}
        with fake_stripe():
            fake = {s: self.outcome(s) for s in self.SCENARIOS}
        for source in self.SCENARIOS:
            if real[source][0] == "ok":
                self.assertLessEqual(set(fake[source][1]), set(real[source][1]) | {"refunds"})
            else:
                self.assertEqual(fake[source], real[source], source)


@real_network("compares the fake push provider's answers with Pushwoosh's")
@unittest.skipUnless(
    settings.PUSH_AUTH_KEY, "set PUSH_AUTH_KEY (and PUSH_API_URL) for the real provider"
)
class PushContractTests(SimpleTestCase):
    def answer_to_unknown_application(self):
        from notifications.http import session

        body = {"request": {"application": "00000-00000", "auth": settings.PUSH_AUTH_KEY,
                            "notifications": [{"send_date": "now", "content": "contract test"}]}}  # fmt: skip
        return session.post(settings.PUSH_API_URL + "createMessage", json=body, timeout=10)

    def test_argument_errors_have_the_same_shape(self):
        real = self.answer_to_unknown_application()
        from notifications.testing import fake_push

        with fake_push():
            fake = self.answer_to_unknown_application()
        self.assertEqual(real.status_code, fake.status_code)
        self.assertEqual(set(real.json()), set(fake.json()))
        self.assertEqual(real.json()["status_code"], fake.json()["status_code"])
