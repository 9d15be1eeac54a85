"""The sandbox's 3-D Secure page (fast tests; the browser journey is in test_browser_3ds)."""

from urllib.parse import parse_qs, urlsplit

import requests
import stripe
from django.contrib.auth import get_user_model
from django.test import SimpleTestCase, TestCase, override_settings
from django.urls import reverse

from payments.models import Payment
from payments.testing import install_sandbox, stripe_globals, stripe_server

User = get_user_model()


class ThreeDSecurePageTests(TestCase):
    def setUp(self):
        self.enterContext(stripe_globals())  # install_sandbox changes them for good
        self.sandbox = install_sandbox(public_url="http://sandbox.test:8123")
        self.sandbox.engine.reset()
        self.user = User.objects.create_user("ada")

    def pay_3ds(self):
        self.client.force_login(self.user)
        answer = self.client.post(
            reverse("payments"),
            {"payment_method": "pm_card_threeDSecure2Required", "amount": 900},
            content_type="application/json",
        )
        self.assertEqual(answer.status_code, 202, answer.content)
        return answer.json()["client_secret"].split("_secret_")[0]

    def test_the_page_is_reachable_by_intent_id_with_both_buttons(self):
        intent = self.pay_3ds()
        page = self.client.get(reverse("sandbox-3ds", args=[intent]))
        self.assertContains(page, "Complete authentication")
        self.assertContains(page, "Fail authentication")
        self.assertContains(page, "9.00 USD")

    def test_complete_settles_the_intent_and_emits_the_events(self):
        intent = self.pay_3ds()
        page = self.client.post(reverse("sandbox-3ds", args=[intent]), {"action": "complete"})
        self.assertContains(page, "Authentication completed")
        self.assertEqual(stripe.PaymentIntent.retrieve(intent).status, "succeeded")
        types = [e["type"] for e in self.sandbox.engine.events]
        self.assertEqual(types[-2:], ["charge.succeeded", "payment_intent.succeeded"])
        again = self.client.post(reverse("sandbox-3ds", args=[intent]), {"action": "fail"})
        self.assertEqual(again.status_code, 409)

    def test_fail_leaves_the_intent_needing_a_new_payment_method(self):
        intent = self.pay_3ds()
        page = self.client.post(reverse("sandbox-3ds", args=[intent]), {"action": "fail"})
        self.assertContains(page, "Authentication failed")
        settled = stripe.PaymentIntent.retrieve(intent)
        self.assertEqual(settled.status, "requires_payment_method")
        self.assertEqual(settled.last_payment_error.code, "payment_intent_authentication_failure")
        self.assertEqual(self.sandbox.engine.events[-1]["type"], "payment_intent.payment_failed")
        # Without webhooks the backend's payment still waits; forwarding settles it.
        self.assertEqual(Payment.objects.get().status, "requires_action")

    def test_with_a_return_url_next_action_redirects_to_the_page_and_back(self):
        intent = stripe.PaymentIntent.create(
            amount=900,
            currency="usd",
            payment_method="pm_card_threeDSecure2Required",
            confirm=True,
            return_url="myapp://payment-done?order=7",
        )
        self.assertEqual(intent.next_action.type, "redirect_to_url")
        redirect = intent.next_action.redirect_to_url
        self.assertEqual(redirect.return_url, "myapp://payment-done?order=7")
        url = urlsplit(redirect.url)
        self.assertEqual((url.scheme, url.netloc), ("http", "sandbox.test:8123"))
        self.assertEqual(url.path, reverse("sandbox-3ds", args=[intent.id]))
        self.assertEqual(
            stripe.PaymentIntent.retrieve(intent.id).next_action.type, "redirect_to_url"
        )
        back = self.client.post(url.path, {"action": "complete"})
        self.assertEqual(back.status_code, 302)
        target = urlsplit(back["Location"])
        self.assertEqual((target.scheme, target.netloc), ("myapp", "payment-done"))
        query = parse_qs(target.query)
        self.assertEqual(query["redirect_status"], ["succeeded"])
        self.assertEqual(query["payment_intent"], [intent.id])
        self.assertEqual(query["order"], ["7"])

    def test_without_a_return_url_stripe_sdk_handles_it(self):
        intent = stripe.PaymentIntent.create(
            amount=900, currency="usd", payment_method="pm_card_threeDSecure2Required", confirm=True
        )
        self.assertEqual(intent.next_action.type, "use_stripe_sdk")

    def test_unknown_intents_and_actions(self):
        self.assertEqual(self.client.get(reverse("sandbox-3ds", args=["pi_nope"])).status_code, 404)
        intent = self.pay_3ds()
        bad = self.client.post(reverse("sandbox-3ds", args=[intent]), {"action": "maybe"})
        self.assertEqual(bad.status_code, 400)


class ThreeDSecureOutsideSandboxTests(TestCase):
    @override_settings(DEBUG=True)
    def test_there_is_no_page_outside_sandbox_mode(self):
        self.assertEqual(self.client.get("/sandbox/3ds/pi_123/").status_code, 404)


class FakeServicesThreeDSecureTests(SimpleTestCase):
    def test_fakeservices_serve_the_page_and_point_next_action_at_it(self):
        from backend.fakeservices import default_mounts, forwarding_stripe, start_fake_services
        from payments.testing import FakeStripe

        wrapper, _ = forwarding_stripe(engine=FakeStripe())
        server = start_fake_services(default_mounts(wrapper))
        self.addCleanup(server.stop)
        wrapper.public_url = server.url
        with stripe_server(server.url + "/stripe"):
            intent = stripe.PaymentIntent.create(
                amount=900, currency="usd", payment_method="pm_card_threeDSecure2Required",
                confirm=True, return_url="https://shop.example/back",
            )  # fmt: skip
            page_url = intent.next_action.redirect_to_url.url
            self.assertTrue(page_url.startswith(f"{server.url}/sandbox/3ds/{intent.id}/"))
            page = requests.get(page_url, timeout=5)
            self.assertIn("Complete authentication", page.text)
            back = requests.post(
                page_url, data={"action": "fail"}, allow_redirects=False, timeout=5
            )
            self.assertEqual(back.status_code, 302)
            self.assertIn("redirect_status=failed", back.headers["Location"])
            self.assertEqual(
                stripe.PaymentIntent.retrieve(intent.id).status, "requires_payment_method"
            )


class ThreeDSecureAnswerRequiredTests(TestCase):
    """A missing answer is not an approval, on every 3-D Secure page (issue 19, #4)."""

    def setUp(self):
        self.enterContext(stripe_globals())
        self.sandbox = install_sandbox()
        self.sandbox.engine.reset()
        pay = dict(amount=900, currency="usd", payment_method="pm_card_threeDSecure2Required")
        self.intent = self.sandbox.call(lambda: stripe.PaymentIntent.create(**pay, confirm=True)).id

    def status(self):
        return self.sandbox.call(lambda: stripe.PaymentIntent.retrieve(self.intent).status)

    def assert_refused(self, response, field_code):
        self.assertEqual(response.status_code, 400, response.content)
        error = response.json()["error"]
        self.assertEqual((error["code"], error["param"]), ("validation_error", "result"))
        self.assertEqual(error["fields"]["result"][0]["code"], field_code)
        self.assertEqual(self.status(), "requires_action")

    def test_the_curl_page_refuses_a_post_without_result(self):
        url = f"/api/sandbox/3ds/{self.intent}/"
        self.assert_refused(self.client.post(url), "required")
        self.assert_refused(self.client.post(url, {"other": "succeed"}), "required")
        self.assert_refused(self.client.post(url, {"result": ""}), "invalid_choice")
        self.assert_refused(
            self.client.post(url, {"result": None}, content_type="application/json"), "null"
        )
        self.assert_refused(self.client.post(url, {}, content_type="application/json"), "required")

    def test_the_curl_page_refuses_an_unknown_result_without_echoing_it(self):
        answer = self.client.post(f"/api/sandbox/3ds/{self.intent}/", {"result": "maybe"})
        self.assert_refused(answer, "invalid_choice")
        self.assertNotIn("maybe", answer.json()["error"]["message"])

    def test_the_curl_page_takes_json_too(self):
        url = f"/api/sandbox/3ds/{self.intent}/"
        broken = self.client.post(url, "{", content_type="application/json")
        self.assertEqual(broken.json()["error"]["code"], "parse_error")
        self.assert_refused(
            self.client.post(url, {"result": 1}, content_type="application/json"), "invalid_choice"
        )
        failed = self.client.post(url, {"result": "fail"}, content_type="application/json")
        self.assertEqual(failed.json(), {"id": self.intent, "status": "requires_payment_method"})

    def test_the_browser_page_refuses_a_post_without_action(self):
        url = reverse("sandbox-3ds", args=[self.intent])
        for data in ({}, {"action": ""}, {"action": "maybe"}):
            with self.subTest(data):
                page = self.client.post(url, data)
                self.assertContains(page, "Choose Complete or Fail authentication", status_code=400)
                self.assertContains(page, 'id="complete"', status_code=400)  # answer it again
                self.assertEqual(self.status(), "requires_action")

    def test_the_fakeservices_page_refuses_a_post_without_action(self):
        from backend.fakeservices import default_mounts, forwarding_stripe, start_fake_services
        from payments.testing import FakeStripe

        wrapper, _ = forwarding_stripe(engine=FakeStripe())
        server = start_fake_services(default_mounts(wrapper))
        self.addCleanup(server.stop)
        wrapper.public_url = server.url
        with stripe_server(server.url + "/stripe"):
            intent = stripe.PaymentIntent.create(
                amount=900, currency="usd", payment_method="pm_card_threeDSecure2Required",
                confirm=True, return_url="https://shop.example/back",
            )  # fmt: skip
            page_url = intent.next_action.redirect_to_url.url
            for data in ({}, {"action": "maybe"}):
                with self.subTest(data):
                    page = requests.post(page_url, data=data, allow_redirects=False, timeout=5)
                    self.assertEqual(page.status_code, 400)
                    self.assertIn("Choose Complete or Fail authentication", page.text)
                    self.assertEqual(
                        stripe.PaymentIntent.retrieve(intent.id).status, "requires_action"
                    )
        stale = requests.get(f"{server.url}/sandbox/3ds/pi_nope/", timeout=5)
        self.assertEqual(stale.status_code, 404)
        self.assertIn("stale or mistyped", stale.text)  # the same page as the sandbox's (#6)
