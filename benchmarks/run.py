"""The one benchmark command: every figure issue 14 asks for, side by side, in one run.

    .venv/bin/python benchmarks/run.py [--rounds R] [--pairs N] [--seconds S] [--quick]
        [--stateful-mock PATH] [--skip-sandbox] [--skip-reminders]

1. In process: a stripe.Token + stripe.Charge pair through fake_stripe() against the
   static-client floor and `responses` (functions imported from benchmarks/stripe_fakes.py).
2. Per pair over HTTP: the fakeservices server (uvicorn) against bare keep-alive servers
   answering prebuilt bytes: the stdlib one (stripe_fakes.bare_server) and uvicorn with the
   same adapter.
3. Throughput, POST /v1/charges, 8 keep-alive clients (benchmarks/loadgen.py, in its own
   process): the bare servers, the seed's stdlib server over the same engine, fakeservices
   empty and with >= 50k stored charges, and stripe-stateful-mock when it is installed
   (`npx --no-install stripe-stateful-mock`, or --stateful-mock PATH to its autostart.js).
4. Sandbox payments (benchmarks/sandbox_payments.py): POST /api/payments/ against
   /api/health/ in process (the backend's own cost), and `sandbox serve --workers 2`
   against the same backend under gunicorn 2x4 on a static Stripe stub (issue 21's ratio);
   the sandbox service as it fills (benchmarks/service.py: POST /v1/charges empty and at
   --service-stored charges, memory per stored charge, restart time after SIGTERM and
   kill -9); the engine alone and through the service's journal (benchmarks/engine_paths.py).
5. Reminders: benchmarks/reminders.py, when present (its own figures, printed as it prints them).

Each figure is the median of R interleaved rounds. All traffic is loopback. The whole run
is bounded: about 2-3 minutes with the defaults, under a minute with --quick.

Latest issue-21 figures (2 shared cores, load 1-4; docs/sandbox.md "Figures"):
POST /api/payments/, 8 keep-alive clients: gunicorn 2x4 on the static stub 120 / 125 /
110 req/s, `sandbox serve --workers 2` with every webhook handled 97 / 108 / 93 req/s
(0.81x, 0.87x, 0.85x; answered alone 0.80x, 0.93x, 0.82x). The service, POST /v1/charges:
4,158 req/s empty, 3,710 at 100k-138k stored (-10.8%); 5.6 KiB RSS per stored charge;
restart at 138k charges 2.0 s after SIGTERM, 1.9 s after kill -9, every charge kept.
Journal vs SQLite WAL: 18 vs 141 us per request; 100k charges load in 0.9 vs 4.9 s.
"""

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
import stripe_fakes as sf  # noqa: E402  (sets Django up)

from fakes.contract import FakeResponse, TransportFault  # noqa: E402
from fakes.server import FakeServer  # noqa: E402
from payments.testing import FakeStripe, encode_form  # noqa: E402

CHARGE_BODY = encode_form({"amount": 500, "currency": "usd", "source": "tok_visa"})
STORED = 50_000


def median(values):
    return statistics.median(values)


# ----------------------------------------------------------------- the servers
class StaticStripe:
    """A fake answering the engine's own token and charge bytes: uvicorn + adapter, no engine."""

    def __init__(self):
        self.token = json.dumps(sf.TOKEN).encode()
        self.charge = json.dumps(sf.CHARGE).encode()

    def handle(self, method, path, query, body, headers):
        return FakeResponse.json(200, self.token if path.endswith("tokens") else self.charge)


class SeedHandler(sf.StaticHandler):
    """The seed's FakeServer handler (stdlib http.server, threads) over the same engine."""

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        try:
            answer = self.server.engine.handle(
                self.command, path.removeprefix("/stripe"), query, body, self.headers
            )
        except TransportFault:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = _serve


def seed_server(engine):
    server = sf.served(SeedHandler)
    server.engine = engine
    return server


def uvicorn_server(fake, freeze_gc=True):
    """fakeservices as `manage.py fakeservices` runs it (uvicorn, gc freezing on)."""
    return FakeServer({"/stripe": fake}, freeze_gc=freeze_gc).start()


def stripe_pairs_against(url, pairs):
    with sf.real_client(url):
        return sf.timed(pairs)


# ----------------------------------------------------------------- load
def load(url, seconds, clients=8, requests=None):
    headers = (
        "Authorization: Bearer sk_test_bench",
        "Content-Type: application/x-www-form-urlencoded",
    )
    answered = loadgen.drive(
        url + "/v1/charges", seconds, method="POST", body=CHARGE_BODY, headers=headers,
        clients=clients, requests=requests,
    )  # fmt: skip
    return answered["rps"]


def fill(engine, charges):
    """Store `charges` charges in the engine (in process: the same objects HTTP would make)."""
    headers = {"Authorization": "Bearer sk_test_bench"}
    body = CHARGE_BODY.encode()
    for _ in range(charges - len(engine.charges)):  # engine.charges builds a list: ask once
        engine.handle("POST", "/v1/charges", "", body, headers)
    gc.collect()
    gc.freeze()


class StatefulMock(sf.PeerServer):
    """stripe-stateful-mock (Node) on a free port, if installed; None otherwise."""

    name = "stripe-stateful-mock"

    @classmethod
    def find(cls, path):
        if path:
            return cls(["node", path])
        if shutil.which("npx"):
            probe = subprocess.run(
                ["npx", "--no-install", "stripe-stateful-mock", "--version"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if "missing packages" not in probe.stderr + probe.stdout:
                return cls(["npx", "--no-install", "stripe-stateful-mock"])
        return None

    def __init__(self, command):
        super().__init__(
            lambda port: command, lambda port: {**os.environ, "PORT": str(port)}, timeout=30
        )


# ----------------------------------------------------------------- sections
def in_process(rounds, pairs):
    layers = {
        "static stripe HTTP client (floor)": sf.with_static_client,
        "responses, static JSON": sf.with_responses,
        "fake_stripe() in process": sf.with_fake_stripe,
    }
    figures = {name: [] for name in layers}
    for _ in range(rounds):
        for name, run in layers.items():
            figures[name].append(run(pairs))
    return {name: median(values) for name, values in figures.items()}


def per_pair(rounds, pairs):
    static = StaticStripe()
    layers = {
        "bare keep-alive http.server (static)": sf.bare_server,
        "bare uvicorn + adapter (static)": lambda n: served_pairs(static, n),
        "fakeservices (uvicorn + engine)": lambda n: served_pairs(FakeStripe(), n),
    }
    figures = {name: [] for name in layers}
    for _ in range(rounds):
        for name, run in layers.items():
            figures[name].append(run(pairs))
    return {name: median(values) for name, values in figures.items()}


def served_pairs(fake, pairs):
    server = uvicorn_server(fake, freeze_gc=False)
    try:
        return stripe_pairs_against(server.url + "/stripe", pairs)
    finally:
        server.stop()


def throughput(rounds, seconds, stateful_mock):
    figures, cpu = {}, {}

    def record(name, value, micros=None):
        figures.setdefault(name, []).append(value)
        if micros is not None:
            cpu.setdefault(name, []).append(micros)

    big_engine = FakeStripe()
    started = time.perf_counter()
    fill(big_engine, STORED)
    fill_seconds = time.perf_counter() - started
    stored = []
    servers = [
        ("bare keep-alive http.server (static)", lambda: sf.served(sf.StaticHandler), ""),
        ("bare uvicorn + adapter (static)", lambda: uvicorn_server(StaticStripe()), "/stripe"),
        ("seed: http.server + engine, empty", lambda: seed_server(FakeStripe()), "/stripe"),
        ("fakeservices, empty", lambda: uvicorn_server(FakeStripe()), "/stripe"),
        ("fakeservices, >= 50k stored", lambda: uvicorn_server(big_engine), "/stripe"),
    ]
    for round_number in range(rounds):
        # Each round starts every server afresh, in a rotating order: drift hits all alike.
        shift = round_number % len(servers)
        for name, start, prefix in servers[shift:] + servers[:shift]:
            if name.endswith("stored"):
                stored.append(len(big_engine.charges))
            server = start()
            try:
                # The servers run in this process, the clients in another: this process's
                # CPU time per answer is the server's cost, steadier than req/s under load.
                began, answered = time.process_time(), load(server.url + prefix, seconds)
                spent = time.process_time() - began
                record(name, answered, spent / (answered * seconds) * 1e6)
            finally:
                server.stop()
    if stateful_mock:
        mock_server = stateful_mock
        try:
            for _ in range(rounds):
                record("stripe-stateful-mock (Node)", load(mock_server.url, seconds))
        finally:
            mock_server.stop()
    result = {name: median(values) for name, values in figures.items()}
    micros = {name: median(values) for name, values in cpu.items()}
    return result, micros, figures, stored, fill_seconds


def run_script(args, timeout):
    out = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    if out.returncode:
        raise RuntimeError(f"{' '.join(args)} failed:\n{out.stderr[-2000:]}")
    return out.stdout


def table(title, rows, columns):
    print(f"\n{title}")
    width = max(len(name) for name, _ in rows) + 2
    print(" " * width + "".join(f"{column:>14}" for column in columns))
    for name, values in rows:
        print(f"{name:<{width}}" + "".join(f"{value:>14}" for value in values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median)")
    parser.add_argument("--pairs", type=int, default=200, help="pairs per layer per round")
    parser.add_argument("--seconds", type=float, default=2.0, help="each throughput run")
    parser.add_argument("--quick", action="store_true", help="3 rounds, 100 pairs, 1 s runs")
    parser.add_argument(
        "--stateful-mock",
        default=os.environ.get("STRIPE_STATEFUL_MOCK"),
        help="path to stripe-stateful-mock's autostart.js (default: $STRIPE_STATEFUL_MOCK, "
        "else `npx --no-install stripe-stateful-mock` if installed)",
    )
    parser.add_argument("--skip-sandbox", action="store_true")
    parser.add_argument(
        "--service-stored", type=int, default=100_000, help="charges the service is filled with"
    )
    parser.add_argument("--skip-reminders", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.pairs, args.seconds = 3, 100, 1.0
    began = time.perf_counter()
    print(f"benchmarks/run.py: {args.rounds} rounds, {args.pairs} pairs, {args.seconds:g} s runs")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start\n")

    print("1/5 in-process pairs ...", flush=True)
    inproc = in_process(args.rounds, args.pairs)
    floor, resp = inproc["static stripe HTTP client (floor)"], inproc["responses, static JSON"]
    print("2/5 pairs over HTTP ...", flush=True)
    pairs = per_pair(args.rounds, args.pairs)
    stdlib_bare = pairs["bare keep-alive http.server (static)"]
    uvicorn_bare = pairs["bare uvicorn + adapter (static)"]
    print("3/5 throughput ...", flush=True)
    mock = StatefulMock.find(args.stateful_mock)
    rates, server_cpu, rate_rounds, stored, fill_seconds = throughput(
        args.rounds, args.seconds, mock
    )
    sandbox = {}
    if not args.skip_sandbox:
        print("4/5 sandbox payments (in process, then gunicorn) ...", flush=True)
        few = str(max(args.pairs // 4, 20))  # (the store's cost per payment is flat)
        for key, script, extra in (
            (
                "inprocess",
                "sandbox_payments.py",
                ["inprocess", "--payments", few, "--rounds", str(args.rounds)],
            ),
            (
                "inprocess_1000",
                "sandbox_payments.py",
                ["inprocess", "--payments", few, "--rounds", "3", "--stored", "1000"],
            ),
            (
                "ratio",
                "sandbox_payments.py",
                ["ratio", "--seconds", str(max(args.seconds, 2)), "--rounds", str(args.rounds)],
            ),
            (
                "service",
                "service.py",
                [
                    "--stored",
                    str(args.service_stored),
                    "--rounds",
                    str(args.rounds),
                    "--seconds",
                    str(args.seconds),
                ],
            ),
            ("store", "engine_paths.py", ["--rounds", str(args.rounds)]),
        ):
            out = run_script([str(HERE / script), *extra], timeout=1800)
            sandbox[key] = json.loads(out.strip().splitlines()[-1])
    reminders = None
    if not args.skip_reminders and (HERE / "reminders.py").exists():
        print("5/5 reminders (benchmarks/reminders.py) ...", flush=True)
        try:
            reminders = run_script([str(HERE / "reminders.py")], timeout=900)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            reminders = f"benchmarks/reminders.py did not finish: {error}"

    table(
        "In process, Token + Charge pair (µs per pair)",
        [
            (name, [f"{value:.0f}", f"{value / floor:.2f}", f"{value / resp:.2f}"])
            for name, value in inproc.items()
        ],
        ["µs", "x floor", "x responses"],
    )
    table(
        "Over HTTP, Token + Charge pair through stripe-python (µs per pair)",
        [
            (name, [f"{value:.0f}", f"{value / stdlib_bare:.2f}", f"{value / uvicorn_bare:.2f}"])
            for name, value in pairs.items()
        ],
        ["µs", "x stdlib bare", "x uvicorn bare"],
    )
    seed = rates["seed: http.server + engine, empty"]
    bare_rate = rates["bare keep-alive http.server (static)"]
    table(
        f"Throughput, POST /v1/charges, 8 keep-alive clients (req/s; >= 50k = "
        f"{min(stored):,}..{max(stored):,} stored, filled in {fill_seconds:.0f} s)",
        [
            (
                name,
                [
                    f"{value:.0f}",
                    f"{value / seed:.2f}",
                    f"{value / bare_rate:.2f}",
                    f"{server_cpu[name]:.0f}" if name in server_cpu else "-",
                ],
            )
            for name, value in rates.items()
        ],
        ["req/s", "x seed", "x stdlib bare", "server CPU µs"],
    )
    empty, full = rates["fakeservices, empty"], rates["fakeservices, >= 50k stored"]
    print(f"  fakeservices at >= 50k stored vs empty: {full / empty - 1:+.0%}")
    if "stripe-stateful-mock (Node)" in rates:
        node = rates["stripe-stateful-mock (Node)"]
        print(f"  fakeservices empty / stripe-stateful-mock: {empty / node:.2f}x")
    else:
        print("  stripe-stateful-mock: not installed (optional; --stateful-mock PATH)")
    print("  rounds: " + json.dumps({k: [round(v) for v in vs] for k, vs in rate_rounds.items()}))
    if sandbox:
        here, ratio, service = sandbox["inprocess"], sandbox["ratio"], sandbox["service"]
        table(
            "Sandbox payments: in process (fake_stripe()), ms per request",
            [
                ("wall", [f"{here['payment']:.2f}", f"{here['health']:.2f}"]),
                ("CPU", [f"{here['payment_cpu']:.2f}", f"{here['health_cpu']:.2f}"]),
                (
                    "payment at 1,000 stored charges (wall)",
                    [f"{sandbox['inprocess_1000']['payment']:.2f}", ""],
                ),
            ],
            ["payment", "health"],
        )
        print(f"  writes per payment: {' + '.join(here['writes_per_payment'])}")
        table(
            "POST /api/payments/, 8 keep-alive clients, req/s (issue 21: sandbox >= 0.8x stub)",
            [
                ("gunicorn 2x4 on a static Stripe stub", [f"{ratio['stub']:.0f}", "1.00"]),
                (
                    "sandbox serve --workers 2, answered",
                    [f"{ratio['sandbox_answered']:.0f}", f"{ratio['ratio_answered']:.2f}"],
                ),
                (
                    "sandbox serve --workers 2, webhooks handled too",
                    [f"{ratio['sandbox']:.0f}", f"{ratio['ratio']:.2f}"],
                ),
            ],
            ["req/s", "x stub"],
        )
        print("  rounds: " + json.dumps(ratio["rounds"]))
        print(
            f"\nThe sandbox service (benchmarks/service.py): POST /v1/charges {service['rps_empty']} "
            f"req/s empty, {service['rps_full']} at {service['stored']:,}+ stored "
            f"({service['full_vs_empty']:+.1%}; rounds side by side "
            f"{service['full_vs_empty_paired']:+.1%}); {service['kib_per_charge']} KiB RSS per stored "
            f"charge; restart at {service['stored_after_rounds']:,} charges "
            f"{service['restart_seconds_sigterm']} s after SIGTERM, {service['restart_seconds_kill9']} s "
            f"after kill -9 (every charge kept: {service['kill9_charges_kept']})"
        )
        store = sandbox["store"]
        print(
            f"  engine alone: {store['engine_us_per_pair']:.0f} µs per Token + Charge pair; through "
            f"the service in memory {store['service_memory_us_per_pair_0']:.0f}, with its journal "
            f"{store['service_journal_us_per_pair_0']:.0f} (at 1,000 stored: "
            f"{store['service_journal_us_per_pair_1000']:.0f})"
        )
    if reminders is not None:
        print("\nReminders (benchmarks/reminders.py)\n" + reminders.rstrip())
    elif not args.skip_reminders:
        print("\nReminders: benchmarks/reminders.py is not in this tree; skipped.")
    print(
        f"\ntook {time.perf_counter() - began:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
