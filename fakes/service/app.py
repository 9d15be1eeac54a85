"""The sandbox service over HTTP: every fake, the control API, the console and the 3-D
Secure page on one port, and the command line that starts it.

    python -m fakes.service --port 8765 --state sandbox-state \\
        --forward-to http://127.0.0.1:8000/api/stripe/webhook/

Paths (docs/sandbox.md has the whole guide):

    /stripe/v1/...       the fake Stripe (point STRIPE_API_BASE here, a sk_test_ key)
    /push/...            the fake Pushwoosh Remote API (PUSH_API_URL)
    /todos-api/...       the fake todo API (TODOS_API_URL)
    /sandbox/3ds/<id>/   the 3-D Secure page
    /control/...         the control API (JSON)
    /console/            the console (HTML)

Bound to 127.0.0.1 by default; `--bind` to another address needs `--console-password`
(or SANDBOX_CONSOLE_PASSWORD), which then guards /control and /console (HTTP Basic, any
user name, or `Authorization: Bearer <password>`). The provider APIs stay open to their
clients, as Stripe's API is, behind their API keys.
"""

import argparse
import os
import signal
import sys
import threading
import time

from fakes.contract import FakeResponse
from fakes.netguard import is_loopback
from fakes.server import FakeApp, FakeServer
from fakes.service.console import Console
from fakes.service.control import ControlApi
from fakes.service.journal import StateLocked
from fakes.service.service import SandboxService
from fakes.service.threeds import ThreeDSecurePages
from fakes.service.webhooks import parse_schedule

DEFAULT_PORT = 8765
PREFIXES = {"stripe": "/stripe", "push": "/push", "todos": "/todos-api"}


class FakeMount:
    """One fake on the service: handle() under the service's lock and journal."""

    def __init__(self, service, name):
        self.service, self.name = service, name

    def handle(self, method, path, query, body, headers):
        return self.service.handle(self.name, method, path, query, body, headers)


class Root:
    """/ opens the console; /v1/... is the fake Stripe in the stripe-mock-compatible mode
    (stripe-mock serves at the root); anything else unknown is a JSON 404 naming the mounts."""

    def __init__(self, stripe=None):
        self.stripe = stripe  # the Stripe mount, when it also answers at the root

    def handle(self, method, path, query, body, headers):
        if self.stripe is not None and (path == "/v1" or path.startswith("/v1/")):
            return self.stripe.handle(method, path, query, body, headers)
        if path in ("", "/"):
            return FakeResponse(302, b"", {"Location": "/console/"})
        if path == "/favicon.ico":
            return FakeResponse(204, b"", {"Cache-Control": "max-age=604800"})
        return FakeResponse.json(
            404,
            {
                "error": {
                    "type": "invalid_request_error",
                    "code": "not_found",
                    "message": f"Nothing at {path}: the sandbox serves /stripe, /push, /todos-api, "
                    "/sandbox/3ds/<intent>/, /control and /console.",
                }
            },
        )


def mounts(service):
    found = {prefix: FakeMount(service, name) for name, prefix in PREFIXES.items()}
    found.update(
        {
            "/control": ControlApi(service),
            "/console": Console(service),
            "/sandbox": ThreeDSecurePages(service),
            "": Root(found["/stripe"] if service.stripe.stripe_mock else None),
        }
    )
    return found


def bind(service=None, host="127.0.0.1", port=DEFAULT_PORT):
    """A FakeServer for the service, bound (OSError if the port is taken); not yet serving.
    Without a service yet, `attach(server, service)` mounts it later: a taken port then
    fails before any state is opened."""
    server = FakeServer({}, host=host, port=port, freeze_gc=True)
    if service is not None:
        attach(server, service)
    return server


def attach(server, service):
    server.app = FakeApp(mounts(service), freeze_gc=server.app.freeze_gc)
    server.mounts = server.app.mounts
    host = server.server_address[0]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 (what to print)
    service.url = f"http://{shown}:{server.server_address[1]}"
    return server


class RunningService:
    """A service served from a thread of this process (tests, benchmarks): .url, .stop()."""

    def __init__(self, service, server):
        self.service, self.server, self.url = service, server, service.url

    def stop(self):
        self.server.stop()
        self.service.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_service(state=None, port=0, **options):
    """A SandboxService on 127.0.0.1 (`port` 0: a free one), served in a daemon thread."""
    service = SandboxService(state, **options)
    try:
        server = bind(service, port=port)
        server.app.freeze_gc = False  # tests share this process: never freeze its objects
        server.start()
    except BaseException:
        service.close()
        raise
    return RunningService(service, server)


def environment(url, secret=None):
    """What a backend sets to use the service as Stripe, Pushwoosh and the todo API."""
    from fakes.pushwoosh import FAKE_APPLICATION, FAKE_AUTH

    found = {
        "STRIPE_SECRET_KEY": "sk_test_sandbox",
        "STRIPE_API_BASE": f"{url}/stripe",
        "PUSH_API_URL": f"{url}/push/",
        "PUSH_APPLICATION": FAKE_APPLICATION,
        "PUSH_AUTH_KEY": FAKE_AUTH,
        "TODOS_API_URL": f"{url}/todos-api/",
    }
    if secret:
        found["STRIPE_WEBHOOK_SECRET"] = secret
    return found


def watch_parent(parent):
    """Stop (as SIGTERM does) once the process that started this one is gone."""

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def port_number(text):
    """argparse type: a TCP port, 0 (a free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (got {port})")
    return port


def parser():
    found = argparse.ArgumentParser(
        prog="python -m fakes.service",
        description="The sandbox service: the Stripe, push and todo fakes, their state, the "
        "control API and the console, on one port.",
    )
    found.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help="port (0: a free one)"
    )
    found.add_argument(
        "--bind",
        default="127.0.0.1",
        help="address to listen on (beyond loopback: needs a password)",
    )
    found.add_argument(
        "--state",
        default=os.environ.get("SANDBOX_STATE") or "memory",
        help="directory of the durable state (journal + snapshots), or 'memory'",
    )
    found.add_argument("--forward-to", metavar="URL", help="deliver webhooks to this URL, signed")
    found.add_argument("--webhook-secret", metavar="whsec_...", help="sign them with this secret")
    found.add_argument(
        "--webhook-retries",
        default="test",
        help="retry schedule: 'test' (Stripe test mode: 3 retries over hours), 'live' (3 days), "
        "or seconds such as 1,5,30",
    )
    found.add_argument(
        "--public-url", help="the address browsers reach this service at (3-D Secure links)"
    )
    found.add_argument(
        "--console-password",
        default=os.environ.get("SANDBOX_CONSOLE_PASSWORD") or None,
        help="guard /console and /control (default: $SANDBOX_CONSOLE_PASSWORD)",
    )
    found.add_argument(
        "--fsync", action="store_true", help="fsync every journal write (power cuts)"
    )
    found.add_argument(
        "--compact-after",
        type=float,
        default=32,
        metavar="MIB",
        help="write a snapshot once the journal passes this many MiB and twice the last snapshot's size (default 32)",
    )
    found.add_argument(
        "--stripe-mock",
        action="store_true",
        help="stripe-mock-compatible mode: Stripe also at the root (/v1/...), and an id never "
        "issued answers a complete object of its resource, as stripe-mock does",
    )
    found.add_argument(
        "--compact-json",
        action="store_true",
        help="answer compact JSON rather than api.stripe.com's indented JSON (faster)",
    )
    found.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    return found


class ServiceError(Exception):
    """The service cannot start: the message says why (exit status `code`)."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = code


def main(argv=None, out=None):
    """The command line: run the service until SIGINT/SIGTERM; returns the exit status."""
    try:
        run(parser().parse_args(argv), out or sys.stdout)
    except ServiceError as error:
        print(error, file=sys.stderr)
        return error.code
    return 0


def run(args, out):
    if not is_loopback(args.bind) and not args.console_password:
        raise ServiceError(
            f"--bind {args.bind} reaches beyond this machine: set --console-password (or "
            "SANDBOX_CONSOLE_PASSWORD) first; it guards the console and the control API.",
            2,
        )
    if args.forward_to and not args.forward_to.startswith(("http://", "https://")):
        raise ServiceError("--forward-to is an http(s) URL", 2)
    if args.webhook_secret and not args.webhook_secret.startswith("whsec_"):
        raise ServiceError("--webhook-secret starts with whsec_", 2)
    try:
        retries = parse_schedule(args.webhook_retries)
    except ValueError as error:
        raise ServiceError(str(error), 2) from None
    try:
        server = bind(None, args.bind, args.port)
    except OSError as error:
        raise ServiceError(f"cannot listen on {args.bind}:{args.port}: {error}") from None
    try:
        service = SandboxService(
            args.state,
            forward_to=args.forward_to,
            webhook_secret=args.webhook_secret,
            retry_delays=retries,
            public_url=args.public_url,
            fsync=args.fsync,
            console_password=args.console_password,
            compact_after=int(args.compact_after * 2**20),
        )
    except StateLocked as error:
        server.server_close()
        raise ServiceError(str(error)) from None
    except OSError as error:  # not a directory, not writable, ...
        server.server_close()
        raise ServiceError(f"cannot keep the state in {args.state}: {error}") from None
    service.stripe.stripe_mock = args.stripe_mock
    service.stripe.compact_json = args.compact_json
    attach(server, service)
    if args.parent_pid:
        watch_parent(args.parent_pid)
    url = service.url
    status = service.status()
    loaded = ""
    if service.journal:
        loaded = (
            f" (loaded {status['stripe']['charge']:,} charges in {service.loaded['seconds']} s)"
        )
    lines = [
        f"Sandbox service on {url} (Ctrl-C to stop)",
        f"Console: {service.public_url or url}/console/",
        f"  Stripe {url}/stripe · push {url}/push/ · todos {url}/todos-api/ · control {url}/control/",
        f"State: {service.location}{loaded}",
        f"Webhook signing secret: {service.endpoint['secret']}",
    ]
    if service.endpoint["url"]:
        lines.append(f"Forwarding webhooks to {service.endpoint['url']}")
    lines.append("Point a backend at it with:")
    environment_line = " ".join(
        f"{k}={v}" for k, v in environment(url, service.endpoint["secret"]).items()
    )
    lines.append("  " + environment_line)
    out.write("\n".join(lines) + "\n")
    out.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        # a second SIGTERM (a supervisor repeating itself) must not cut the stop snapshot
        # short; a second Ctrl-C still can (the journal keeps everything either way)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        service.close()
