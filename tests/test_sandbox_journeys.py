"""Slow journeys (SLOW_TESTS=1): the sandbox as a shared staging server under gunicorn."""

import requests
from django.test import SimpleTestCase

from backend.testing import slow_test
from tests.servers import SandboxServer

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


@slow_test
class GunicornSandboxTests(SimpleTestCase):
    def setUp(self):
        self.server = SandboxServer(workers=3)
        self.addCleanup(self.server.cleanup)
        self.http = requests.Session()
        self.addCleanup(self.http.close)

    def api(self, method, path, **kwargs):
        return self.http.request(method, self.server.url + path, timeout=20, **kwargs)

    def test_three_workers_share_one_stripe_that_survives_a_restart(self):
        self.server.start()
        health = self.api("GET", "/api/health/").json()
        self.assertEqual(health["sandbox_state"], str(self.server.path / "sandbox-state.sqlite3"))
        self.http.headers["Authorization"] = "Token " + self.server.token(self.http)
        failures, payments = [], []
        for number in range(10):
            paid = self.api(
                "POST",
                "/api/payments/",
                json={**CARD, "amount": 1000},
                headers={"Idempotency-Key": f"order-{number}"},
            )
            if paid.status_code != 201:
                failures.append(("pay", number, paid.status_code, paid.text[:200]))
                continue
            payment = paid.json()["id"]
            payments.append(payment)
            read = self.api("GET", f"/api/payments/{payment}/")
            if read.status_code != 200 or read.json()["status"] != "succeeded":
                failures.append(("read", payment, read.status_code, read.text[:200]))
            for _ in range(2):
                refund = self.api("POST", f"/api/payments/{payment}/refund/", json={"amount": 300})
                if refund.status_code != 200:
                    failures.append(("refund", payment, refund.status_code, refund.text[:200]))
        self.assertEqual(failures, [], self.server.logs()[-3000:])
        self.assertEqual(len(payments), 10)

        self.server.stop()
        self.server.start()
        again = self.api("POST", f"/api/payments/{payments[0]}/refund/", json={"amount": 100})
        self.assertEqual(again.status_code, 200, again.text)
        self.assertEqual(again.json()["amount_refunded"], 700)
        replay = self.api(  # the idempotent retry of an old payment, after the restart
            "POST",
            "/api/payments/",
            json={**CARD, "amount": 1000},
            headers={"Idempotency-Key": "order-0"},
        )
        why = (replay.status_code, replay.text[:500], self.server.logs()[-3000:])
        self.assertEqual(replay.json().get("id"), payments[0], why)

        # Every event reached the backend's own webhook endpoint (signed, in process).
        [(events,)] = self.server.query("SELECT count(*) FROM payments_stripeevent")
        self.assertGreaterEqual(events, 10 * 3)  # charge.succeeded + 2 charge.refunded each

    def test_thirty_pay_then_replay_pairs_replay_the_first_answer(self):
        # Issue 19: the sandbox forwards charge.succeeded to the worker's own webhook while
        # the paying request settles; the webhook's write must never erase the stored
        # answer (a replay then answered 409 for two minutes).
        self.server.start()
        self.http.headers["Authorization"] = "Token " + self.server.token(self.http)
        bad = []
        for number in range(30):
            body, key = {**CARD, "amount": 700 + number}, {"Idempotency-Key": f"pair-{number}"}
            paid = self.api("POST", "/api/payments/", json=body, headers=key)
            again = self.api("POST", "/api/payments/", json=body, headers=key)
            if (paid.status_code, again.status_code) != (201, 201) or paid.json() != again.json():
                bad.append((number, paid.status_code, again.status_code, again.text[:120]))
        self.assertEqual(bad, [], f"{len(bad)} bad replays of 30")
        rows = self.server.query(
            "SELECT count(*) FROM payments_payment"
            " WHERE response_body IS NULL OR locked_until IS NOT NULL"
        )
        self.assertEqual(rows, [(0,)])
