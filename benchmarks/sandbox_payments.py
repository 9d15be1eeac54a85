"""Sandbox payments: POST /api/payments/ against GET /api/health/, in process and under gunicorn.

Each mode runs on its own throw-away SQLite file (WAL, as backend.settings configures a
file database) in sandbox mode (the fake Stripe in process), with throttles lifted so
the figure is the request's cost. Loopback only. Prints one JSON line.

    python benchmarks/sandbox_payments.py inprocess [--payments N] [--rounds R] [--stored N]
    python benchmarks/sandbox_payments.py gunicorn [--seconds S] [--rounds R]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
UNTHROTTLED = {
    "PAYMENTS_THROTTLE": "100000000/hour",
    "API_THROTTLE_ANON": "100000000/min",
    "API_THROTTLE_USER": "100000000/min",
    "API_THROTTLE_AUTH": "100000000/min",
    "DEBUG": "true",
    "STRIPE_SECRET_KEY": "",
    "STRIPE_API_BASE": "",
    "PUSH_AUTH_KEY": "",
    "TODOS_API_URL": "",
    "LOG_LEVEL": "ERROR",
}


def environment(folder):
    env = {**os.environ, **UNTHROTTLED, "DATABASE_URL": f"sqlite:///{folder}/bench.sqlite3"}
    env.pop("CACHE_URL", None)  # locmem: each gunicorn worker counts its own (lifted) throttle
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
    """ms per request through the Django test client (the full middleware, no socket)."""
    folder = tempfile.mkdtemp(prefix="pb-bench-")
    env = environment(folder)
    token = prepare(env)
    os.environ.update({k: v for k, v in env.items() if k in UNTHROTTLED or k == "DATABASE_URL"})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from backend import sandbox

    sandbox.activate()
    if args.stored:  # charges already in the shared sandbox state (as after a day of use)
        from fakes.stripe import FakeStripe

        wrapper, filler = sandbox._active["stripe"], FakeStripe()
        form = b"amount=500&currency=usd&source=tok_visa"
        for _ in range(args.stored):
            filler.handle("POST", "/v1/charges", "", form, {"Authorization": "Bearer sk_test_x"})
        wrapper.run(lambda: wrapper.engine.load_state(filler.dump_state()))
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


# ------------------------------------------------------------------ gunicorn
def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load(url, seconds, body=None, token=None, clients=8, expect=200):
    command = [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), url]
    command += ["--clients", str(clients), "--seconds", str(seconds), "--expect", str(expect)]
    if token:
        command += ["--header", f"Authorization: Token {token}"]
    if body is not None:
        command += ["--method", "POST", "--body", body]
        command += ["--header", "Content-Type: application/json"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds + 60)
    result = json.loads(out.stdout)
    if result["failures"]:
        raise RuntimeError(f"{url}: answers other than {expect}: {result['statuses']}")
    return result["rps"]


def under_gunicorn(args):
    """Requests/s with 8 keep-alive clients against gunicorn (2 workers x 4 threads, gthread)."""
    folder = tempfile.mkdtemp(prefix="pb-bench-")
    env = environment(folder)
    token = prepare(env)
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "backend.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                load(base + "/api/health/", 0.2, clients=1)
                break
            except (subprocess.CalledProcessError, RuntimeError):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.2)
        # The same body every time: each POST without an Idempotency-Key is a new payment.
        body = payment_body(1)
        load(base + "/api/payments/", 0.5, body, token, expect=201)  # warm both workers
        figures = {"payment": [], "health": []}
        for _ in range(args.rounds):
            figures["payment"].append(
                load(base + "/api/payments/", args.seconds, body, token, args.clients, 201)
            )
            figures["health"].append(
                load(base + "/api/health/", args.seconds, clients=args.clients)
            )
        result = {name: statistics.median(values) for name, values in figures.items()}
        result["rounds"] = figures
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["inprocess", "gunicorn"])
    parser.add_argument("--payments", type=int, default=200, help="requests per round (inprocess)")
    parser.add_argument("--seconds", type=float, default=3.0, help="per load run (gunicorn)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stored", type=int, default=0, help="charges stored first (inprocess)")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive clients (gunicorn)")
    args = parser.parse_args()
    (inprocess if args.mode == "inprocess" else under_gunicorn)(args)


if __name__ == "__main__":
    main()
