"""Sandbox payments: POST /api/payments/ in process, and the sandbox against a static stub.

    python benchmarks/sandbox_payments.py inprocess [--payments N] [--rounds R] [--stored N]
    python benchmarks/sandbox_payments.py ratio [--seconds S] [--rounds R] [--clients 8]

`inprocess`: ms per request through the Django test client (the full middleware, no
socket), Stripe the in-process fake (fake_stripe()): the backend's own cost per payment,
against /api/health/.

`ratio` (issue 21): the same backend two ways, in the same run, interleaved rounds, 8
keep-alive clients (benchmarks/loadgen.py, its own process):

- sandbox: `manage.py sandbox serve --workers 2 --threads 4` (gunicorn gthread + the
  sandbox service, its state on disk, every payment's webhook forwarded to the backend);
- stub: `gunicorn -w 2 --threads 4` (gthread) with STRIPE_API_BASE at a static Stripe
  stub (benchmarks/stripe_stub.py: prebuilt token and charge bytes, no webhooks).

The sandbox figure is counted two ways: payments answered per second of the load, and
(the one the ratio uses) payments per second until the last of their webhooks was
handled too (the deliveries that were still queued when the load stopped are waited
for), so the webhooks' work is never left out of the window.

Each mode runs on its own throw-away SQLite files (WAL), throttles lifted. Loopback only.
Prints one JSON line.
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import loadgen

ROOT = Path(__file__).resolve().parent.parent
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
UNTHROTTLED = {
    "PAYMENTS_THROTTLE": "100000000/hour",
    "API_THROTTLE_ANON": "100000000/min",
    "API_THROTTLE_USER": "100000000/min",
    "API_THROTTLE_AUTH": "100000000/min",
    "DEBUG": "true",
    "LOG_LEVEL": "ERROR",
}


def environment(folder, name, **extra):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "PUSH_", "TODOS_", "SANDBOX_", "CACHE_URL"))
    }
    env.update(UNTHROTTLED, DATABASE_URL=f"sqlite:///{folder}/{name}.sqlite3", **extra)
    return env


def prepare(env):
    """Migrate the file database and make a user with a token; returns the token key."""
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    code = (
        "from django.contrib.auth.models import User; from accounts.services import sign_in; "
        "u = User.objects.create_user('bench'); print(sign_in(u, 'bench')[1])"
    )
    out = subprocess.run(
        [python, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def payment_body(n):
    return json.dumps({**CARD, "amount": 500 + n % 1000, "description": f"bench {n}"})


# ------------------------------------------------------------------ in process
def inprocess(args):
    """ms per request through the Django test client, Stripe the in-process fake."""
    folder = tempfile.mkdtemp(prefix="pb-bench-")
    env = environment(folder, "bench", STRIPE_SECRET_KEY="sk_test_bench", PUSH_AUTH_KEY="k")
    token = prepare(env)
    os.environ.update({k: v for k, v in env.items() if k in UNTHROTTLED or k == "DATABASE_URL"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from fakes.stripe import fake_stripe

    faked = fake_stripe()  # for the whole run (kept: its context ends when collected)
    engine = faked.__enter__()
    if args.stored:  # charges already stored (as after a day of use)
        form = b"amount=500&currency=usd&source=tok_visa"
        for _ in range(args.stored):
            engine.handle("POST", "/v1/charges", "", form, {"Authorization": "Bearer sk_test_x"})
    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    counter = iter(range(10**9))

    def pay():
        response = client.post(
            "/api/payments/", payment_body(next(counter)), content_type="application/json"
        )
        assert response.status_code == 201, response.content

    def health():
        response = client.get("/api/health/")
        assert response.status_code == 200, response.content

    def timed(run, count):
        """(wall ms, CPU ms) per request: the machine is shared, CPU time is the steadier."""
        run()
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            run()
        wall = (time.perf_counter() - start) / count * 1000
        return wall, (time.process_time() - cpu) / count * 1000

    with CaptureQueriesContext(connection) as queries:
        pay()
    statements = len(queries.captured_queries)
    writes = [
        q["sql"].split()[0]
        for q in queries.captured_queries
        if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE", "BEGIN")
    ]
    figures = {"payment": [], "health": [], "payment_cpu": [], "health_cpu": []}
    for _ in range(args.rounds):
        for name, run in (("payment", pay), ("health", health)):
            wall, cpu = timed(run, args.payments)
            figures[name].append(wall)
            figures[name + "_cpu"].append(cpu)
    result = {name: statistics.median(values) for name, values in figures.items()}
    result["statements_per_payment"] = statements
    result["writes_per_payment"] = writes
    result["stored_charges"] = args.stored
    print(json.dumps(result))


# ------------------------------------------------------------------ over HTTP
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load(url, seconds, body=None, token=None, clients=8, expect=200):
    headers = [f"Authorization: Token {token}"] if token else []
    if body is not None:
        headers.append("Content-Type: application/json")
    return loadgen.drive(url, seconds, method="GET" if body is None else "POST", body=body,
                         headers=headers, clients=clients, expect=expect)  # fmt: skip


def wait_for(url, process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def webhooks(service_url):
    with urllib.request.urlopen(service_url + "/control/status", timeout=30) as answer:
        return json.load(answer)["webhooks"]


def gunicorn_quiet():
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


def ratio(args):
    folder = Path(tempfile.mkdtemp(prefix="pb-ratio-"))
    processes = []

    def spawn(command, env):
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        processes.append(process)
        return process

    try:
        # the stub and the backend on it
        stub_port, stub_backend = free_port(), free_port()
        stub = spawn(
            [sys.executable, str(ROOT / "benchmarks" / "stripe_stub.py"), "--port", str(stub_port)],
            os.environ,
        )
        stub_env = environment(
            folder, "stub",
            STRIPE_SECRET_KEY="sk_test_stub", STRIPE_API_BASE=f"http://127.0.0.1:{stub_port}/stripe",
            STRIPE_WEBHOOK_SECRET="whsec_stub", PUSH_AUTH_KEY="k", PUSH_APPLICATION="A",
            TODOS_API_URL="http://127.0.0.1:9/",
        )  # fmt: skip
        stub_token = prepare(stub_env)
        backend = spawn(
            [sys.executable, "-m", "gunicorn", "backend.wsgi:application", "--bind",
             f"127.0.0.1:{stub_backend}", "--workers", "2", "--threads", "4", "--worker-class",
             "gthread", "--keep-alive", "30", "--log-level", "warning", *gunicorn_quiet()],
            stub_env,
        )  # fmt: skip
        wait_for(f"http://127.0.0.1:{stub_backend}/api/health/", backend)
        if stub.poll() is not None:
            raise RuntimeError("the stub exited")

        # the sandbox
        port, service_port = free_port(), free_port()
        service_url = f"http://127.0.0.1:{service_port}"
        sandbox_env = environment(
            folder, "sandbox", SANDBOX_URL=service_url, SANDBOX_STATE=str(folder / "state")
        )
        sandbox_token = prepare(sandbox_env)
        serve = spawn(
            [sys.executable, "manage.py", "sandbox", "serve", "--port", str(port), "--service-port",
             str(service_port), "--workers", "2", "--threads", "4", "--no-migrate"],
            sandbox_env,
        )  # fmt: skip
        wait_for(f"http://127.0.0.1:{port}/api/health/", serve)

        body = payment_body(1)  # the same body each time: no Idempotency-Key, a new payment
        stub_url = f"http://127.0.0.1:{stub_backend}/api/payments/"
        sandbox_url = f"http://127.0.0.1:{port}/api/payments/"
        load(stub_url, 1.0, body, stub_token, args.clients, 201)  # warm every worker
        load(sandbox_url, 1.0, body, sandbox_token, args.clients, 201)
        drain(service_url)
        figures = {"stub": [], "sandbox_answered": [], "sandbox": [], "drain_seconds": []}
        for _ in range(args.rounds):
            figures["stub"].append(
                load(stub_url, args.seconds, body, stub_token, args.clients, 201)["rps"]
            )
            before = webhooks(service_url)["delivered"]
            result = load(sandbox_url, args.seconds, body, sandbox_token, args.clients, 201)
            drained = drain(service_url)
            delivered = webhooks(service_url)["delivered"] - before
            figures["sandbox_answered"].append(result["rps"])
            # payments whose webhooks were handled too, per second of load + drain
            figures["sandbox"].append(result["requests"] / (args.seconds + drained))
            figures["drain_seconds"].append(drained)
            figures.setdefault("webhooks_per_payment", []).append(
                delivered / max(result["requests"], 1)
            )
        result = {name: statistics.median(values) for name, values in figures.items()}
        result["ratio"] = result["sandbox"] / result["stub"]
        result["ratio_answered"] = result["sandbox_answered"] / result["stub"]
        result["rounds"] = {k: [round(v, 2) for v in vs] for k, vs in figures.items()}
        print(json.dumps(result))
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)


def drain(service_url, timeout=60):
    """Seconds until the service has no webhook pending."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if webhooks(service_url)["pending"] == 0:
            return time.perf_counter() - began
        time.sleep(0.02)
    raise RuntimeError("webhooks still pending")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["inprocess", "ratio"])
    parser.add_argument("--payments", type=int, default=200, help="requests per round (inprocess)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per load run (ratio)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stored", type=int, default=0, help="charges stored first (inprocess)")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive clients (ratio)")
    args = parser.parse_args()
    (inprocess if args.mode == "inprocess" else ratio)(args)


if __name__ == "__main__":
    main()
