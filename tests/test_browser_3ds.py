"""Slow journeys (SLOW_TESTS=1): the sandbox service's pages in a real headless Chromium.

The sandbox runs as a mobile team runs it (`manage.py sandbox serve`: the service plus
gunicorn with 2 threaded workers). The browser clicks the 3-D Secure page's buttons (the
service hosts it, as Stripe hosts the issuer's) and the backend's payment settles
within 2 s from the forwarded webhooks; then it opens the console and finds the payment.
"""

import os
import shutil
import time

import requests
from django.test import SimpleTestCase

from backend.testing import slow_test
from tests.servers import SandboxServer

# Debian's packages (apt-get install chromium chromium-driver), or the given ones.
CHROMIUM = os.environ.get("CHROMIUM_BINARY") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or "/usr/bin/chromedriver"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@slow_test
class BrowserThreeDSecureTests(SimpleTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
            raise AssertionError(
                "SLOW_TESTS=1 needs Chromium: apt-get install -y chromium chromium-driver"
            )
        cls.server = SandboxServer(workers=2, threads=4).start()
        cls.addClassCleanup(cls.server.cleanup)
        cls.driver = browser()
        cls.addClassCleanup(cls.driver.quit)

    def setUp(self):
        self.http = requests.Session()
        self.addCleanup(self.http.close)
        self.http.headers["Authorization"] = "Token " + self.server.token(self.http)

    def pay_3ds(self, **extra):
        answer = self.http.post(
            self.server.url + "/api/payments/",
            json={"payment_method": "pm_card_threeDSecure2Required", "amount": 1500, **extra},
            timeout=20,
        )
        self.assertEqual(answer.status_code, 202, answer.text)
        body = answer.json()
        return body["id"], body["client_secret"].split("_secret_")[0]

    def status_within(self, payment, seconds):
        deadline = time.monotonic() + seconds
        while True:
            status = self.http.get(f"{self.server.url}/api/payments/{payment}/", timeout=5)
            status = status.json()["status"]
            if status != "requires_action" or time.monotonic() > deadline:
                return status
            time.sleep(0.05)

    def authenticate(self, intent, button):
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.server.service_url}/sandbox/3ds/{intent}/")
        self.assertEqual(self.driver.title, "3D Secure 2 Test Page")
        self.assertEqual(self.driver.find_element(By.ID, "intent").text, intent)
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        self.driver.find_element(By.XPATH, f"//button[normalize-space()='{button}']").click()
        clicked = time.monotonic()
        outcome = WebDriverWait(self.driver, 10).until(
            expected_conditions.presence_of_element_located((By.ID, "outcome"))
        )
        return clicked, outcome.text

    def test_complete_authentication_settles_the_payment_within_2_seconds(self):
        payment, intent = self.pay_3ds()
        clicked, outcome = self.authenticate(intent, "Complete authentication")
        self.assertEqual(outcome, "Authentication completed.")
        self.assertEqual(self.status_within(payment, 2), "succeeded", self.server.logs()[-2000:])
        self.assertLess(time.monotonic() - clicked, 2.5)

    def test_fail_authentication_leaves_the_payment_failed(self):
        payment, intent = self.pay_3ds()
        _, outcome = self.authenticate(intent, "Fail authentication")
        self.assertEqual(outcome, "Authentication failed.")
        self.assertEqual(self.status_within(payment, 2), "failed", self.server.logs()[-2000:])
        detail = self.http.get(f"{self.server.url}/api/payments/{payment}/", timeout=5).json()
        self.assertEqual(detail["failure_code"], "payment_intent_authentication_failure")

    def test_an_app_return_url_the_page_says_it_is_done(self):
        from selenium.webdriver.common.by import By

        payment, intent = self.pay_3ds(return_url="myapp://paid")
        _, outcome = self.authenticate(intent, "Complete authentication")
        self.assertEqual(outcome, "Authentication completed.")
        self.assertEqual(self.driver.find_element(By.ID, "status").text, "succeeded")
        back = self.driver.find_element(By.ID, "return").get_attribute("href")
        self.assertTrue(back.startswith(f"myapp://paid?payment_intent={intent}"), back)
        self.assertEqual(self.status_within(payment, 2), "succeeded")

    def test_the_console_shows_the_payment_and_updates_live(self):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        paid = self.http.post(
            self.server.url + "/api/payments/", json={**card, "amount": 4321}, timeout=20
        )
        self.assertEqual(paid.status_code, 201, paid.text)
        charge = paid.json()["stripe_charge_id"]
        self.driver.get(f"{self.server.service_url}/console/stripe")
        self.assertIn("Sandbox console", self.driver.title)
        table = self.driver.find_element(By.TAG_NAME, "main").text
        self.assertIn(charge, table)
        self.assertIn("43.21 USD", table)
        # search by id, then open it
        box = self.driver.find_element(By.NAME, "q")
        box.send_keys(charge + "\n")
        WebDriverWait(self.driver, 10).until(expected_conditions.url_contains("q="))
        self.driver.find_element(By.LINK_TEXT, charge).click()
        self.assertEqual(self.driver.find_element(By.ID, "object-id").text, charge)
        # the event page shows the webhook delivered to the backend, and live updates arrive
        self.driver.get(f"{self.server.service_url}/console/events")
        WebDriverWait(self.driver, 10).until(
            lambda driver: "delivered" in driver.find_element(By.TAG_NAME, "main").text
        )
        again = self.http.post(
            self.server.url + "/api/payments/", json={**card, "amount": 555}, timeout=20
        )
        second = again.json()["stripe_charge_id"]
        WebDriverWait(self.driver, 10).until(  # no reload: the page polls and swaps itself
            lambda driver: second in driver.find_element(By.TAG_NAME, "main").text
        )
        if os.environ.get("SANDBOX_CONSOLE_SCREENSHOT"):
            self.driver.set_window_size(1280, 760)
            self.driver.get(f"{self.server.service_url}/console/events")
            time.sleep(1.5)  # the live indicator's first poll
            self.driver.save_screenshot(os.environ["SANDBOX_CONSOLE_SCREENSHOT"])
