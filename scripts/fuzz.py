"""Fuzz the API with schemathesis against a throwaway sandbox server; non-zero on any failure.

    .venv/bin/python scripts/fuzz.py [--seed N] [--max-examples N] [--max-time S] [-- ST_ARGS...]

What it does, in order:
1. migrates a fresh SQLite database in a temporary directory (sandbox mode: no Stripe
   key), and creates a user and a staff user with API tokens;
2. starts the sandbox service (`python -m fakes.service`, state in memory) and
   `manage.py runserver --noreload` in sandbox mode, each on a free port on 127.0.0.1
   (generous throttles, so requests reach validation instead of 429);
3. runs `st run` on /api/schema/ with every check, every phase (examples,
   coverage, fuzzing, stateful links), a fixed seed and a bounded example count:
   once with the user's token on every operation, once with the staff token on the
   operations staff can do that a user cannot (refunds);
4. stops both and prints one line per run: operations, requests, seed, result.

Any 5xx, any answer the schema does not document, any body that does not match
it, any accepted invalid input fails the run (schemathesis exits non-zero).
"""

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ST = str(Path(PYTHON).with_name("st"))

CREATE_USERS = """
from django.contrib.auth import get_user_model
from accounts.services import sign_in
User = get_user_model()
user = User.objects.create_user("fuzz-user", password="fuzz-password-1234")
staff = User.objects.create_user("fuzz-staff", password="fuzz-password-1234", is_staff=True)
revoker = User.objects.create_user("fuzz-revoker", password="fuzz-password-1234")
print(*(sign_in(u, name="fuzz")[1] for u in (user, staff, revoker)))
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url, process, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited early with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url} within {seconds} s")


REQUEST_LINE = re.compile(r'"[A-Z]+ /\S* HTTP/[\d.]+" (\d{3}) ')


def server_statuses(log_path, start):
    """Statuses of the requests the server logged after line `start` (runserver's access log)."""
    lines = Path(log_path).read_text(errors="replace").splitlines()[start:]
    return [int(m.group(1)) for line in lines if (m := REQUEST_LINE.search(line))]


def log_length(log_path):
    return len(Path(log_path).read_text(errors="replace").splitlines())


def pay(base, token):
    """Pay 1,000.00 with Stripe's tok_visa through the API; returns the payment id."""
    request = urllib.request.Request(  # noqa: S310 (loopback, http)
        f"{base}/api/payments/",
        data=json.dumps({"token": "tok_visa", "amount": 100_000}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return json.load(response)["id"]


def summary_number(pattern, output, default="?"):
    match = re.search(pattern, output)
    return match.group(1) if match else default


def run_schemathesis(name, base, token, args, report_dir, extra, server_log):
    report = report_dir / f"{name}.ndjson"
    command = [
        ST, "--config-file", str(report_dir / "schemathesis.toml"),
        "run", f"{base}/api/schema/",
        "--url", base,
        "-H", f"Authorization: Token {token}",
        "--checks", "all",
        "--phases", "examples,coverage,fuzzing,stateful",
        "--seed", str(args.seed),
        "--max-examples", str(args.max_examples),
        "--request-timeout", "10",
        "--no-color",
        "--report", "ndjson", "--report-ndjson-path", str(report),
        *extra, *args.st_args,
    ]  # fmt: skip
    if args.max_time:
        command += ["--max-time", str(args.max_time)]
    print("$", " ".join(command).replace(token, "<token>"), flush=True)
    started, log_start = time.monotonic(), log_length(server_log)
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = []
    for text in process.stdout:
        sys.stdout.write(text)
        output.append(text)
    code = process.wait()
    output = "".join(output)
    time.sleep(0.5)  # let the server flush its access log
    statuses = server_statuses(server_log, log_start)
    operations = summary_number(r"Tested: (\d+)", output)
    test_cases = summary_number(r"(\d+) generated", output)
    failures = summary_number(r"(\d+) unique failures?", output, "0")
    server_errors = sum(1 for status in statuses if status >= 500)
    line = (
        f"fuzz[{name}]: operations={operations} test_cases={test_cases} "
        f"requests={len(statuses)} server_errors={server_errors} failures={failures} "
        f"seed={args.seed} max_examples={args.max_examples} "
        f"seconds={time.monotonic() - started:.0f} exit={code}"
    )
    return code, line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", "20261201")))
    parser.add_argument(
        "--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
    )
    parser.add_argument("--max-time", type=int, default=None, help="seconds per run, optional")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("st_args", nargs="*", help="extra arguments for `st run` (after --)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="paybackend-fuzz-"))
    service_port = free_port()
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{workdir / 'fuzz.sqlite3'}",
        "STRIPE_SECRET_KEY": "",  # sandbox mode: Stripe is the sandbox service
        "STRIPE_API_BASE": "",
        "SANDBOX_URL": f"http://127.0.0.1:{service_port}",
        "STRIPE_WEBHOOK_SECRET": "whsec_fuzz_only",
        "PUSH_APPLICATION": "",
        "PUSH_AUTH_KEY": "",
        "TODOS_API_URL": "",
        "CACHE_URL": "locmemcache://",
        "PAYMENTS_THROTTLE": "1000000/hour",
        "API_THROTTLE_ANON": "1000000/min",
        "API_THROTTLE_USER": "1000000/min",
        "API_THROTTLE_AUTH": "1000000/min",
        "LOG_LEVEL": "WARNING",
    }
    manage = [PYTHON, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
    tokens = subprocess.run(
        [*manage, "shell", "-c", CREATE_USERS],
        env=env, cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    user_token, staff_token, revoke_token = tokens[-3:]

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(workdir / "server.log", "w")  # closed in finally
    service_log = open(workdir / "service.log", "w")  # closed in finally
    service = subprocess.Popen(
        [PYTHON, "-m", "fakes.service", "--port", str(service_port), "--state", "memory"],
        env=env, cwd=ROOT, stdout=service_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_until_up(f"{env['SANDBOX_URL']}/control/status", service)
    except BaseException:
        service.kill()
        service.wait()
        raise
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload", "--nothreading"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    lines, code = [], 0
    try:
        wait_until_up(f"{base}/api/health/", server)
        # A paid payment, so the staff run's refunds reach the refund logic, not only 404.
        config = (ROOT / "scripts" / "schemathesis.toml").read_text()
        config = config.replace(
            '"path.id" = 0 }  # FUZZ_PAYMENT_ID', f'"path.id" = {pay(base, staff_token)} }}'
        )
        (workdir / "schemathesis.toml").write_text(config)
        runs = [
            # DELETE /api/auth/token/ revokes the caller's token: it gets a run of its own,
            # last, with a token of its own, so the other operations keep theirs.
            (
                "user",
                user_token,
                ["--exclude-name", "DELETE /api/auth/token/"],
            ),
            # Staff can refund: payments (for stateful links to a payment id) and refunds.
            ("staff", staff_token, ["--include-path-regex", "^/api/payments/"]),
            (
                "revoke",
                revoke_token,
                ["--include-name", "DELETE /api/auth/token/"],
            ),
        ]
        for name, token, extra in runs:
            run_code, line = run_schemathesis(
                name, base, token, args, workdir, extra, workdir / "server.log"
            )
            print(line, flush=True)
            lines.append(line)
            code = code or run_code
    finally:
        for process in (server, service):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
        service_log.close()
    errors = [line for line in (workdir / "server.log").read_text().splitlines() if " 500 " in line]
    print(f"\nserver log: {len(errors)} responses with a 5xx status")
    for line in lines:
        print(line)
    print(f"fuzz: {'FAILED' if code else 'passed'} (seed {args.seed})")
    if args.keep or code:
        print(f"reports and server log kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return code or (1 if errors else 0)


if __name__ == "__main__":
    sys.exit(main())
