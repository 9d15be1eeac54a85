"""The fake server (fakes.server.FakeServer, uvicorn): keep-alive, faults over a socket, shape."""

import socket

import requests
import stripe
from django.test import SimpleTestCase

from backend.fakeservices import start_fake_services
from fakes.server import FakeServer
from payments.testing import FakeStripe, encode_form, stripe_server

CHARGE = encode_form({"amount": 500, "currency": "usd", "source": "tok_visa"}).encode()


def raw_request(sock, path="/stripe/v1/charges", body=CHARGE, extra=b""):
    sock.sendall(
        b"POST " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer sk_test_raw\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n" + extra + b"Content-Length: "
        b"" + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def read_response(sock):
    """One HTTP/1.1 answer (status line, headers, Content-Length body) or b'' if dropped."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(rest) < length:
        rest += sock.recv(65536)
    return head + b"\r\n\r\n" + rest


class FakeServerTests(SimpleTestCase):
    def setUp(self):
        self.engine = FakeStripe()
        self.server = start_fake_services({"/stripe": self.engine})
        self.addCleanup(self.server.stop)
        self.address = self.server.server_address[:2]

    def connect(self):
        sock = socket.create_connection(self.address, timeout=5)
        self.addCleanup(sock.close)
        return sock

    def test_one_connection_serves_many_requests(self):
        sock = self.connect()
        for _ in range(3):
            raw_request(sock)
            answer = read_response(sock)
            self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer[:80])
            self.assertIn(b'"object": "charge"', answer)
        self.assertEqual(len(self.engine.charges), 3)

    def test_answers_do_not_wait_for_delayed_acks(self):
        # uvicorn writes head and body apart; with Nagle on, each answer would wait ~40 ms
        # for the client's delayed ACK. 20 answers take a few ms; Nagle would make it 0.8 s.
        import time

        with requests.Session() as session:
            session.get(self.server.url + "/stripe/v1/charges", timeout=5)
            started = time.monotonic()
            for _ in range(20):
                session.get(
                    self.server.url + "/stripe/v1/charges",
                    headers={"Authorization": "Bearer sk_test_x"},
                    timeout=5,
                )
            self.assertLess(time.monotonic() - started, 0.5)

    def test_timeout_and_connection_error_drop_the_connection_without_an_answer(self):
        for kind in ("timeout", "connection_error"):
            with self.subTest(kind):
                self.engine.faults.add("POST /v1/charges", kind)
                sock = self.connect()
                raw_request(sock)
                self.assertEqual(read_response(sock), b"")  # closed, not a word
        self.assertEqual(len(self.engine.charges), 0)  # neither ran

    def test_lost_response_performs_the_request_then_drops_the_connection(self):
        self.engine.faults.add("POST /v1/charges", "lost_response")
        sock = self.connect()
        raw_request(sock, extra=b"Idempotency-Key: lost-1\r\n")
        self.assertEqual(read_response(sock), b"")
        self.assertEqual(len(self.engine.charges), 1)

    def test_the_stripe_library_retries_a_dropped_request_with_the_same_key(self):
        self.engine.faults.add("POST /v1/charges", "lost_response")
        with stripe_server(self.server.url + "/stripe", max_network_retries=1):
            charge = stripe.Charge.create(
                amount=700, currency="usd", source="tok_visa", idempotency_key="retry-1"
            )
        self.assertEqual(charge.last_response.headers["Idempotent-Replayed"], "true")
        self.assertEqual(len(self.engine.charges), 1)

    def test_a_dropped_request_is_a_connection_error_for_requests(self):
        self.engine.faults.add("POST /v1/charges", "timeout")
        with self.assertRaises(requests.exceptions.ConnectionError):
            requests.post(
                self.server.url + "/stripe/v1/charges",
                data=CHARGE,
                headers={"Authorization": "Bearer sk_test_x"},
                timeout=5,
            )
        # the next request is served as usual
        answer = requests.get(
            self.server.url + "/stripe/v1/charges",
            headers={"Authorization": "Bearer sk_test_x"},
            timeout=5,
        )
        self.assertEqual(answer.status_code, 200)

    def test_headers_reach_the_fake_case_insensitively_and_bodies_come_back_whole(self):
        seen = []

        class Echo:
            def handle(self, method, path, query, body, headers):
                from fakes.contract import FakeResponse

                seen.append((method, path, query, headers.get("X-Thing"), headers["x-THING"]))
                return FakeResponse(201, body * 1000, {"X-Echo": "yes"})

        with FakeServer({"/echo/": Echo()}) as server:
            answer = requests.put(
                server.url + "/echo/a/b?x=1&y=%20", data=b"ab", headers={"x-thing": "v"}, timeout=5
            )
        self.assertEqual((answer.status_code, answer.content), (201, b"ab" * 1000))
        self.assertEqual(answer.headers["X-Echo"], "yes")
        self.assertEqual(seen, [("PUT", "/a/b", "x=1&y=%20", "v", "v")])

    def test_a_taken_port_fails_in_the_constructor_and_stop_frees_the_port(self):
        port = self.server.server_address[1]
        with self.assertRaises(OSError):
            FakeServer({"/stripe": FakeStripe()}, port=port)
        self.server.stop()
        with self.assertRaises(OSError):
            socket.create_connection(self.address, timeout=2)
        FakeServer({"/stripe": FakeStripe()}, port=port).server_close()  # free again
