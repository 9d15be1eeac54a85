"""Slow journeys (SLOW_TESTS=1): the sandbox as a shared staging server, real processes.

`manage.py sandbox serve --workers 3` (the sandbox service + gunicorn, as a mobile team
runs it), driven over HTTP and from the command line in other processes: the issue's
"Done when" list (issue 21).
"""

import re
import time

import requests
from django.test import SimpleTestCase

from backend.testing import slow_test
from tests.servers import SandboxServer, alive

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


@slow_test
class SandboxServeJourneys(SimpleTestCase):
    def setUp(self):
        self.server = SandboxServer(workers=3)
        self.addCleanup(self.server.cleanup)
        self.http = requests.Session()
        self.addCleanup(self.http.close)

    def api(self, method, path, fresh=False, **kwargs):
        if fresh:  # a new connection: gunicorn hands it to whichever worker accepts it
            headers = {**self.http.headers, **kwargs.pop("headers", {})}
            return requests.request(
                method, self.server.url + path, timeout=20, headers=headers, **kwargs
            )
        return self.http.request(method, self.server.url + path, timeout=20, **kwargs)

    def sign_in(self):
        self.http.headers["Authorization"] = "Token " + self.server.token(self.http)

    def workers_of(self, request_line, since):
        """The gunicorn worker pids that answered `request_line` in the log after `since`."""
        found = {}
        for pid, status in re.findall(
            rf"worker=<?(\d+)>? {re.escape(request_line)} HTTP/1.1 (\d+)",
            self.server.logs()[since:],
        ):
            found.setdefault(status, set()).add(pid)
        return found

    def pay_fresh(self, amount):
        return self.api(
            "POST", "/api/payments/", fresh=True, json={**CARD, "amount": amount}
        ).status_code

    @staticmethod
    def concurrently(count, call):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: call(), range(count)))

    def assert_no_process_left(self, pids):
        deadline = time.monotonic() + 10
        while (
            any(alive(pid, self.server.started.get(pid)) for pid in pids)
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        self.assertEqual([pid for pid in pids if alive(pid, self.server.started.get(pid))], [])

    def test_three_workers_share_the_service_its_faults_and_its_push_provider(self):
        # `sandbox status` first, on a fresh state (it once broke every push registration).
        status = self.server.manage("sandbox", "status")
        self.assertEqual(status.returncode, 1, status.stdout)  # no service yet: it says so
        self.assertIn("does not answer", status.stderr)
        self.server.start()
        status = self.server.manage("sandbox", "status")
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("0 charges", status.stdout)
        health = self.api("GET", "/api/health/").json()
        self.assertEqual(
            (health["sandbox"], health["sandbox_url"]),
            (["stripe", "push", "todos"], self.server.service_url),
        )
        self.sign_in()

        # pay, read back, refund twice: 10 payments across the workers, 0 failures
        failures, payments = [], []
        for number in range(10):
            paid = self.api("POST", "/api/payments/", fresh=True, json={**CARD, "amount": 1000},
                            headers={"Idempotency-Key": f"order-{number}"})  # fmt: skip
            if paid.status_code != 201:
                failures.append(("pay", number, paid.status_code, paid.text[:200]))
                continue
            payment = paid.json()["id"]
            payments.append(payment)
            read = self.api("GET", f"/api/payments/{payment}/", fresh=True)
            if read.status_code != 200 or read.json()["status"] != "succeeded":
                failures.append(("read", payment, read.status_code, read.text[:200]))
            for _ in range(2):
                refund = self.api(
                    "POST", f"/api/payments/{payment}/refund/", fresh=True, json={"amount": 300}
                )
                if refund.status_code != 200:
                    failures.append(("refund", payment, refund.status_code, refund.text[:200]))
        self.assertEqual(failures, [], self.server.logs()[-3000:])
        self.assertGreaterEqual(len(self.workers_of("POST /api/payments/", 0)["201"]), 2)

        # push devices register on every worker, and reminders reach the service's outbox
        registered = [
            self.api(
                "POST",
                "/api/devices/",
                fresh=True,
                json={"push_token": f"tok-{n}", "platform": "ios"},
            )
            for n in range(6)
        ]
        self.assertEqual([r.status_code for r in registered], [201] * 6, registered[0].text)
        sent = self.server.manage("send_reminders")
        self.assertEqual(sent.returncode, 0, sent.stderr)
        outbox = requests.get(
            self.server.service_url + "/control/push/outbox?user=1", timeout=10
        ).json()
        self.assertEqual(
            len(outbox["data"]), 1, sent.stdout
        )  # the admin is user 1, whose todos are unfinished
        self.assertIn("unfinished todos", outbox["data"][0]["content"])

        # a fault switched on from the command line strikes every worker, then clears
        switched = self.server.manage(
            "sandbox", "fault", "stripe", "POST", "/v1/charges", "5xx", "--times", "1000"
        )
        self.assertEqual(switched.returncode, 0, switched.stderr)
        workers = set(re.findall(r"Booting worker with pid: (\d+)", self.server.logs()))
        self.assertEqual(len(workers), 3)
        mark, struck, seen = len(self.server.logs()), [], set()
        for _ in range(8):  # concurrent fresh connections, until every worker has answered
            struck += self.concurrently(12, lambda: self.pay_fresh(700))
            time.sleep(0.3)  # (the access log is written after the answer)
            seen = self.workers_of("POST /api/payments/", mark).get("503", set())
            if seen == workers:
                break
        self.assertEqual(set(struck), {503})
        self.assertEqual(seen, workers)  # every worker met the fault
        cleared = self.server.manage("sandbox", "fault", "clear")
        self.assertIn("none", cleared.stdout)
        healed = [
            self.api("POST", "/api/payments/", fresh=True, json={**CARD, "amount": 700}).status_code
            for _ in range(6)
        ]
        self.assertEqual(healed, [201] * 6)

        # every webhook reached the backend, signed; the console's JSON agrees
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            hooks = requests.get(self.server.service_url + "/control/status", timeout=10).json()[
                "webhooks"
            ]
            if hooks["pending"] == 0:
                break
            time.sleep(0.2)
        self.assertEqual((hooks["pending"], hooks["failed"]), (0, 0))
        [(events,)] = self.server.query("SELECT count(*) FROM payments_stripeevent")
        self.assertEqual(events, hooks["delivered"])

        pids = self.server.processes()
        self.assertGreaterEqual(
            len(pids), 1 + 1 + 1 + 3
        )  # serve, the service, gunicorn + 3 workers
        self.server.stop()  # SIGTERM
        self.assert_no_process_left(pids)

    def test_kill_9_of_everything_right_after_a_201_loses_nothing(self):
        self.server.start()
        self.sign_in()
        paid = [
            self.api("POST", "/api/payments/", json={**CARD, "amount": 900 + n}).json()["id"]
            for n in range(3)
        ]
        last = self.api("POST", "/api/payments/", json={**CARD, "amount": 1234})
        self.assertEqual(last.status_code, 201, last.text)
        killed = self.server.kill_everything()  # right after the 201
        self.assert_no_process_left(killed)

        self.server.start()
        self.sign_in()
        refund = self.api(
            "POST", f"/api/payments/{last.json()['id']}/refund/", json={"amount": 234}
        )
        self.assertEqual(refund.status_code, 200, refund.text)
        self.assertEqual(refund.json()["amount_refunded"], 234)
        listed = self.api("GET", "/api/payments/?page_size=100").json()["results"]
        self.assertEqual({p["id"] for p in listed}, {*paid, last.json()["id"]})
        status = requests.get(self.server.service_url + "/control/status", timeout=10).json()
        self.assertEqual(status["stripe"]["charge"], 4)  # the service kept every charge
        self.assertEqual(status["stripe"]["refund"], 1)
        pids = self.server.processes()
        self.server.stop()
        self.assert_no_process_left(pids)

    def test_thirty_pay_then_replay_pairs_replay_the_first_answer(self):
        # Issue 19: the sandbox delivers charge.succeeded to the backend while the paying
        # request settles; the webhook's write must never erase the stored answer (a replay
        # then answered 409 idempotency_request_in_progress for two minutes).
        self.server.start()
        self.sign_in()
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
