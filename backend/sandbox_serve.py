"""`manage.py sandbox serve`: the sandbox service plus this backend, as one command.

It starts, in this order, and supervises:

1. the sandbox service (`python -m fakes.service`), its state in SANDBOX_STATE, forwarding
   webhooks to this backend's /api/stripe/webhook/;
2. the backend: gunicorn with N workers x T threads (gthread), or `runserver` for
   development (`make run`), in sandbox mode: SANDBOX_URL is the service, no provider
   credentials, STRIPE_WEBHOOK_SECRET the service's signing secret.

It prints `Backend: <url>` and `Console: <url>` once both answer. SIGTERM or Ctrl-C stops
both (the backend first, so no request is cut off from its Stripe) and waits for them;
if either dies, the other is stopped too and the command fails. The children also die
with this process if it is killed outright (PR_SET_PDEATHSIG on Linux; the service
watches its parent on any system), and each leads a process group that stop() signals
as a whole.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from backend import sandbox

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def die_with_parent():
    """In the child, before exec: get SIGTERM when the parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def gunicorn_quiet():
    """gunicorn 27 opens a control socket at one path per user (~/.gunicorn/): two servers
    would share it. Ours never uses it."""
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in names else []


class Stopping(Exception):
    pass


def signal_group(group, signum):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def group_alive(group):
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class Supervisor:
    def __init__(self, options, write):
        self.options, self.write = options, write
        self.children = []  # (name, Popen), in start order
        self._stop_requested = False

    # ------------------------------------------------------------------ children
    def spawn(self, name, command, env):
        # Each child leads a process group of its own (gunicorn's workers, runserver's
        # reloaded child): stop() signals the whole group, and the terminal's Ctrl-C
        # reaches this process only, which then stops them in order.
        process = subprocess.Popen(  # noqa: S603
            command, cwd=ROOT, env=env, start_new_session=True, preexec_fn=die_with_parent
        )
        self.children.append((name, process))
        return process

    def wait_until(self, name, process, check, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stop_requested:
                raise Stopping
            if process.poll() is not None:
                raise RuntimeError(
                    f"the {name} exited (status {process.returncode}) while starting"
                )
            try:
                found = check()
            except (requests.RequestException, sandbox.SandboxUnavailable):
                found = None
            if found:
                return found
            time.sleep(0.1)
        raise RuntimeError(f"the {name} did not answer within {seconds} s")

    def stop(self, timeout=15):
        """SIGTERM each child's process group, newest first (the backend, then the
        service), and wait until none of its processes is left."""
        for name, process in reversed(self.children):
            signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.write(f"the {name} did not stop within {timeout} s: killing it")
            deadline = time.monotonic() + 5
            while group_alive(process.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if group_alive(process.pid):
                signal_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def request_stop(self, signum, frame):
        self._stop_requested = True

    # ------------------------------------------------------------------ the run
    def run(self):
        options = self.options
        host, port = options["bind"], options["port"]
        service_port = options["service_port"]
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        service_url = f"http://{reachable}:{service_port}"
        backend_url = f"http://{reachable}:{port}"
        forward_to = f"http://127.0.0.1:{port}/api/stripe/webhook/"
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self.request_stop)
        try:
            command = [sys.executable, "-m", "fakes.service", "--port", str(service_port)]
            command += ["--bind", host, "--state", options["state"], "--forward-to", forward_to]
            command += [
                "--webhook-retries",
                options["webhook_retries"],
                "--parent-pid",
                str(os.getpid()),
            ]
            if options["public_url"]:
                command += ["--public-url", options["public_url"]]
            env = dict(os.environ)
            if options["console_password"]:
                env["SANDBOX_CONSOLE_PASSWORD"] = options["console_password"]
            service = self.spawn("sandbox service", command, env)
            control = sandbox.client(service_url, options["console_password"] or "")
            endpoint = self.wait_until("sandbox service", service, lambda: control.get("webhook"))
            environment = sandbox.backend_environment(service_url, endpoint["secret"])
            if options["runserver"]:
                command = [sys.executable, "manage.py", "runserver", f"{host}:{port}"]
            else:
                command = [sys.executable, "-m", "gunicorn", "backend.wsgi:application"]
                command += ["--bind", f"{host}:{port}", "--workers", str(options["workers"])]
                command += ["--threads", str(options["threads"]), "--worker-class", "gthread"]
                command += ["--keep-alive", "30", "--graceful-timeout", "5", *gunicorn_quiet()]
            backend = self.spawn("backend", command, environment)
            self.wait_until(
                "backend",
                backend,
                lambda: requests.get(f"{backend_url}/api/health/", timeout=2).status_code == 200,
            )
            # what failed while the backend was starting (after a restart, pending
            # webhooks are tried at once) is tried again now, not at its next retry
            with contextlib.closing(control):
                control.post("webhook/retry-pending")
            console = (options["public_url"] or service_url).rstrip("/") + "/console/"
            self.write(f"Backend: {backend_url}/api/ (docs {backend_url}/api/docs/)")
            self.write(f"Console: {console}")
            self.write("Ctrl-C (or SIGTERM) stops both.")
            while not self._stop_requested:
                for name, process in self.children:
                    if process.poll() is not None:
                        raise RuntimeError(f"the {name} exited (status {process.returncode})")
                time.sleep(0.2)
            return 0
        except Stopping:
            return 0
        finally:
            self.stop()
