"""Network guard for test suites: nothing leaves the machine while tests run.

While enabled, name look-ups, connections and datagrams to anything but loopback
(127.0.0.0/8, ::1, "localhost") or a Unix socket raise NetworkBlocked at once,
before any DNS query or packet, naming the host and port and saying how to fake
the service instead. `enable()` / `disable()`, or `allowed()` to lift it for a
block. A suite enables it for its whole run; any pytest suite can opt in with
`--fakes-netguard` (fakes.pytest_plugin).

Why not pytest-socket alone: its connect() guard lets the DNS look-up through
(urllib3 resolves the name before connecting), reports neither the port nor a
remedy, and resets itself after every pytest test, so it cannot serve the
Django runner. The blocking here is the same technique, on three functions.

NetworkBlocked is a RuntimeError, not an OSError, on purpose: requests, urllib3
and the stripe library treat OSErrors as transient and retry with back-off,
which would turn an instant failure into seconds of sleeping.

The advice in the message names these fakes; a suite with its own wrappers says
so with `configure(advice=..., remedy=...)`.
"""

import contextlib
import ipaddress
import socket

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

# Per provider domain: how to fake it instead (configure() replaces or extends these).
ADVICE = {
    "stripe.com": "use fakes.stripe.fake_stripe() (or MockToken) to fake Stripe",
    "pushwoosh.com": "mount fakes.pushwoosh.FakePushProvider or use `responses` to fake pushes",
    "jsonplaceholder.typicode.com": "mount fakes.todos.FakeTodoApi to fake the todo API",
}
GENERIC_ADVICE = "fake the service (responses, unittest.mock, or a fake server on 127.0.0.1)"
# How a test that truly needs the network gets it.
REMEDY = "A test that truly needs the network lifts the guard with fakes.netguard.allowed()."

# The real functions, looked up at call time so tests of the guard can stub them.
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto
_real_getaddrinfo = socket.getaddrinfo
_real_gethostbyname = socket.gethostbyname

_enabled = False


class NetworkBlocked(RuntimeError):
    def __init__(self, host, port, how):
        self.host, self.port = host, port
        advice = next(
            (text for domain, text in ADVICE.items() if str(host).endswith(domain)), GENERIC_ADVICE
        )
        super().__init__(
            f"Network access blocked during tests: {how} {host}:{port}. "
            f"Tests may only reach loopback; {advice}. {REMEDY}"
        )


def configure(advice=None, remedy=None):
    """Say how this suite fakes a provider (`advice`: {domain: text}, merged over ADVICE)
    and how a test reaches the real network (`remedy`); both are kept until changed."""
    global REMEDY
    if advice:
        ADVICE.update(advice)
    if remedy is not None:
        REMEDY = remedy


def is_loopback(host):
    if host is None:
        return False
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_address(sock, address, how):
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host, port = (address[0], address[1]) if isinstance(address, tuple) else (address, None)
    if not is_loopback(host):
        raise NetworkBlocked(host, port, how)


def _guarded_connect(sock, address):
    _check_address(sock, address, "connect to")
    return _real_connect(sock, address)


def _guarded_connect_ex(sock, address):
    _check_address(sock, address, "connect to")
    return _real_connect_ex(sock, address)


def _guarded_sendto(sock, data, *args):
    # sendto(data, address) or sendto(data, flags, address): UDP needs no connect().
    _check_address(sock, args[-1], "send a datagram to")
    return _real_sendto(sock, data, *args)


def _guarded_getaddrinfo(host, port, *args, **kwargs):
    if host is not None and not is_loopback(host):
        raise NetworkBlocked(host, port, "DNS look-up of")
    return _real_getaddrinfo(host, port, *args, **kwargs)


def _guarded_gethostbyname(host):
    if not is_loopback(host):
        raise NetworkBlocked(host, None, "DNS look-up of")
    return _real_gethostbyname(host)


def enable():
    global _enabled
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.socket.sendto = _guarded_sendto
    socket.getaddrinfo = _guarded_getaddrinfo
    socket.gethostbyname = _guarded_gethostbyname
    _enabled = True


def disable():
    global _enabled
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.socket.sendto = _real_sendto
    socket.getaddrinfo = _real_getaddrinfo
    socket.gethostbyname = _real_gethostbyname
    _enabled = False


def is_enabled():
    return _enabled


@contextlib.contextmanager
def allowed():
    """Lift the guard for one block (used by @real_network tests only)."""
    was_enabled = _enabled
    disable()
    try:
        yield
    finally:
        if was_enabled:
            enable()
