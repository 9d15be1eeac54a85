"""Real backend servers for the slow journeys: gunicorn on a free port, its own database."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "sandbox-journey-password-1"


def reserved_port():
    """A socket bound to a free loopback port, for the server to inherit (gunicorn's fd://).
    The port is this server's from now until cleanup(), across restarts: a port probed free and
    bound later could be taken in between by a parallel worker's server, or be the source port
    of one of its connections."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


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


class SandboxServer:
    """`gunicorn backend.wsgi -w N` in sandbox mode (no credentials, DEBUG on), on a SQLite
    file of its own, or on a PostgreSQL database of its own when the test run uses
    PostgreSQL (so the slow journeys run on both, as CI runs the suite on both)."""

    def __init__(self, workers=3, threads=None, **environment):
        self.directory = tempfile.TemporaryDirectory()
        self.path = Path(self.directory.name)
        self.workers = workers
        # Browsers keep idle (pre)connections open, and a sync worker waits on one until it
        # times out: give browser tests threaded workers, as a server behind no proxy needs.
        self.threads = threads
        self.socket = reserved_port()
        self.port = self.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
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
            SANDBOX_PUBLIC_URL=self.url,
            SANDBOX_STATE=str(self.path / "sandbox-state.sqlite3"),
            **environment,
        )
        self.process = None
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

    def start(self):
        command = [sys.executable, "-m", "gunicorn", "backend.wsgi", "-w", str(self.workers),
                   "-b", f"fd://{self.socket.fileno()}", "--graceful-timeout", "5"]  # fmt: skip
        if self.threads:
            command += ["--worker-class", "gthread", "--threads", str(self.threads)]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            pass_fds=(self.socket.fileno(),),
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/api/health/", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start; see {self.log.name}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def cleanup(self):
        self.stop()
        self.socket.close()
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
