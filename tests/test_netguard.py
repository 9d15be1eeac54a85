"""The network guard, tested so that a broken guard could not send anything.

Hosts are named, never given as public or private IP literals, and the real
`connect`/`getaddrinfo` beneath the guard are stubbed: if the guard let a call
through, the stub records it and the test fails, and still nothing is sent.
"""

import socket
import time
from unittest import mock

import requests
import stripe
from django.test import SimpleTestCase

from fakes import netguard
from fakes.netguard import NetworkBlocked


class GuardTestCase(SimpleTestCase):
    def setUp(self):
        self.assertTrue(netguard.is_enabled(), "the test runner must enable the network guard")
        patches = {
            "_real_connect": mock.Mock(side_effect=AssertionError("guard let connect through")),
            "_real_connect_ex": mock.Mock(side_effect=AssertionError("guard let connect through")),
            "_real_sendto": mock.Mock(side_effect=AssertionError("guard let a datagram through")),
            "_real_getaddrinfo": mock.Mock(side_effect=AssertionError("guard let DNS through")),
            "_real_gethostbyname": mock.Mock(side_effect=AssertionError("guard let DNS through")),
        }
        self.stubs = {}
        for name, stub in patches.items():
            patcher = mock.patch.object(netguard, name, stub)
            self.stubs[name] = patcher.start()
            self.addCleanup(patcher.stop)

    def assertNothingReachedTheNetwork(self):
        for name, stub in self.stubs.items():
            self.assertFalse(stub.called, f"{name} was reached")


class NetworkGuardTests(GuardTestCase):
    def test_requests_to_stripe_is_blocked_before_dns(self):
        start = time.monotonic()
        with self.assertRaises(NetworkBlocked) as caught:
            requests.get("https://api.stripe.com/v1/charges", timeout=5)
        self.assertLess(time.monotonic() - start, 1.0)
        message = str(caught.exception)
        self.assertIn("api.stripe.com:443", message)
        self.assertIn("fake_stripe()", message)
        self.assertNothingReachedTheNetwork()

    def test_stripe_library_with_nothing_faked_fails_fast_naming_the_host(self):
        start = time.monotonic()
        with (
            mock.patch.object(stripe, "api_key", "sk_test_guard"),
            mock.patch.object(stripe, "default_http_client", None),
        ):
            with self.assertRaises(stripe.APIConnectionError) as caught:
                stripe.Token.create(card={"number": "4242424242424242"})
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertIn("api.stripe.com", str(caught.exception))
        self.assertIn("NetworkBlocked", str(caught.exception))
        self.assertNothingReachedTheNetwork()

    def test_raw_socket_to_a_named_host_is_blocked(self):
        with socket.socket() as sock:
            with self.assertRaises(NetworkBlocked) as caught:
                sock.connect(("api.stripe.com", 443))
            with self.assertRaises(NetworkBlocked):
                sock.connect_ex(("api.stripe.com", 443))
        self.assertEqual((caught.exception.host, caught.exception.port), ("api.stripe.com", 443))
        self.assertNothingReachedTheNetwork()

    def test_udp_datagrams_to_a_named_host_are_blocked(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            with self.assertRaises(NetworkBlocked):
                sock.sendto(b"metric:1|c", ("statsd.example.com", 8125))
            with self.assertRaises(NetworkBlocked):
                sock.sendto(b"metric:1|c", 0, ("statsd.example.com", 8125))
        self.assertNothingReachedTheNetwork()

    def test_dns_lookups_are_blocked(self):
        with self.assertRaises(NetworkBlocked):
            socket.getaddrinfo("push.example.com", 443)
        with self.assertRaises(NetworkBlocked):
            socket.gethostbyname("push.example.com")
        self.assertNothingReachedTheNetwork()

    def test_loopback_passes_through_to_the_real_functions(self):
        self.stubs["_real_connect"].side_effect = None
        self.stubs["_real_getaddrinfo"].side_effect = None
        with socket.socket() as sock:
            sock.connect(("127.0.0.1", 5432))
        socket.getaddrinfo("localhost", 80)
        self.assertEqual(self.stubs["_real_connect"].call_count, 1)
        self.assertEqual(self.stubs["_real_getaddrinfo"].call_count, 1)

    def test_loopback_addresses_are_recognised(self):
        for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"):
            self.assertTrue(netguard.is_loopback(host), host)
        for host in ("api.stripe.com", "localhost.example.com", "", None):
            self.assertFalse(netguard.is_loopback(host), host)


class RealLoopbackTests(SimpleTestCase):
    def test_a_real_connection_to_127_0_0_1_works(self):
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            with socket.create_connection(server.getsockname(), timeout=2) as client:
                conn, _ = server.accept()
                client.sendall(b"ping")
                self.assertEqual(conn.recv(4), b"ping")
                conn.close()
