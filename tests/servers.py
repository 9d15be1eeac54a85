"""Real sandbox servers for the slow journeys: `sandbox serve` on free ports, its own database."""

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "sandbox-journey-password-1"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ScratchPostgres:
    """A database of its own on the PostgreSQL server the test run uses, dropped after."""

    def __init__(self, settings_dict, name):
        import psycopg

        self.psycopg, self.name = psycopg, name
        self.params = {
            "host": settings_dict["HOST"] or "127.0.0.1",
            "port": settings_dict["PORT"] or 5432,
            "user": settings_dict["USER"],
            "password": settings_dict["PASSWORD"] or None,
        }
        self._run(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        password = f":{self.params['password']}" if self.params["password"] else ""
        self.url = (
            f"postgres://{self.params['user']}{password}@{self.params['host']}:"
            f"{self.params['port']}/{name}"
        )

    def _run(self, *statements):
        with self.psycopg.connect(dbname="postgres", autocommit=True, **self.params) as db:
            for statement in statements:
                db.execute(statement)

    def drop(self):
        self._run(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def descendants(pid):
    """Every process below `pid` (children, grandchildren...), from /proc."""
    children = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def started_at(pid):
    """The process's start time (clock ticks since boot), or None once it is gone or a
    zombie: with the pid, it names one process (a pid alone may be reused)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else int(fields[19])


def alive(pid, start=None):
    """True while the process runs (and, given its start time, is still that process)."""
    now = started_at(pid)
    return now is not None and (start is None or now == start)


class SandboxServer:
    """`manage.py sandbox serve --workers N` (the sandbox service + gunicorn, real processes),
    on a free pair of ports, with a state directory and a SQLite file of its own, or a
    PostgreSQL database of its own when the test run uses PostgreSQL (so the slow
    journeys run on both, as CI runs the suite on both)."""

    def __init__(self, workers=3, threads=4, **environment):
        self.directory = tempfile.TemporaryDirectory()
        self.path = Path(self.directory.name)
        self.workers, self.threads = workers, threads
        self.port, self.service_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service_url = f"http://127.0.0.1:{self.service_port}"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("STRIPE_", "PUSH_", "TODOS_", "SANDBOX_"))
        }
        self.postgres = None
        database_url = f"sqlite:///{self.path / 'db.sqlite3'}"
        if connection.vendor == "postgresql":
            self.postgres = ScratchPostgres(
                connection.settings_dict, f"{connection.settings_dict['NAME']}_srv{self.port}"
            )
            database_url = self.postgres.url
        self.env.update(
            DATABASE_URL=database_url,
            DEBUG="true",
            CACHE_URL="locmemcache://",
            PAYMENTS_THROTTLE="1000/hour",
            API_THROTTLE_AUTH="1000/min",
            SANDBOX_URL=self.service_url,
            SANDBOX_STATE=str(self.path / "sandbox-state"),
            # each request's worker in the log: "<pid> <request line> <status>"
            GUNICORN_CMD_ARGS="--access-logfile - --access-logformat 'worker=%(p)s %(r)s %(s)s'",
            **environment,
        )
        self.process = None
        self.started = {}  # pid -> start time of every process seen, for the cleanup
        self.log = open(self.path / "server.log", "w")
        self._manage("migrate", "--noinput", "-v0")
        self._manage("createsuperuser", "--noinput", "--username", "admin", "--email", "a@x.org")

    def _manage(self, *args):
        subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
            check=True,
            capture_output=True,
            timeout=60,
        )

    def manage(self, *args, timeout=60):
        """A management command in its own process, as a person runs it beside the server."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def start(self):
        command = [sys.executable, "manage.py", "sandbox", "serve", "--port", str(self.port),
                   "--service-port", str(self.service_port), "--workers", str(self.workers),
                   "--threads", str(self.threads), "--no-migrate"]  # fmt: skip
        mark = len(self.logs())
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"sandbox serve exited {self.process.returncode}:\n{self.logs()[-3000:]}"
                )
            if "Backend: " in self.logs()[mark:]:  # printed once both answer
                self.processes()
                return self
            time.sleep(0.2)
        raise RuntimeError(f"sandbox serve did not start:\n{self.logs()[-3000:]}")

    def processes(self):
        """The pids of `sandbox serve` and every process it started."""
        if self.process is None:
            return []
        found = [self.process.pid, *descendants(self.process.pid)]
        for pid in found:
            self.started.setdefault(pid, started_at(pid))
        return found

    def kill_everything(self):
        """kill -9 of every sandbox process at once (a power cut, an OOM killer)."""
        pids = self.processes()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        return pids

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                for pid in self.processes():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None

    def cleanup(self):
        self.stop()
        leftover = [pid for pid, start in self.started.items() if start and alive(pid, start)]
        for pid in leftover:  # never leave a process behind, even after a failed test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()
        self.directory.cleanup()
        if self.postgres is not None:
            self.postgres.drop()

    def query(self, sql):
        """Rows of one SQL query on the server's own database."""
        if self.postgres is not None:
            with self.postgres.psycopg.connect(
                dbname=self.postgres.name, **self.postgres.params
            ) as db:
                return [tuple(row) for row in db.execute(sql).fetchall()]
        with sqlite3.connect(self.path / "db.sqlite3") as db:
            return db.execute(sql).fetchall()

    def token(self, session):
        answer = session.post(
            self.url + "/api/auth/token/",
            json={"username": "admin", "password": PASSWORD},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["token"]

    def logs(self):
        self.log.flush()
        return (self.path / "server.log").read_text()
