"""Reminders at scale: the daily plan for 10k and 100k users through 1 and 2 Celery workers.

    .venv/bin/python benchmarks/reminders.py [--sizes 10000,100000] [--workers 1,2]

Needs PostgreSQL (its own database, default pb_reminders_bench, created and migrated
here) and Redis (db 5, flushed before each run). The fake push provider and todo API
are served over HTTP from this process; each worker is a separate `celery worker`
process (solo pool) pointed at them. A run is timed from queuing `plan_reminders` to
the last reminder recorded `sent`, and then checked: every user received exactly one push.
Target (issue 14): 100k users in <= 60 s with 2 workers, 2 workers faster than 1.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG = "postgres://postgres@127.0.0.1:5432/"
BROKER_URL = "redis://127.0.0.1:6379/5"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="user counts, comma-separated")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--database", default="pb_reminders_bench")
    parser.add_argument("--timeout", type=float, default=300, help="seconds allowed per run")
    return parser.parse_args()


def ensure_database(name):
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url):
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed_users(count):
    from django.contrib.auth import get_user_model
    from django.db import connection

    User = get_user_model()
    have = User.objects.filter(username__startswith="bench-").count()
    if have >= count:
        return
    start = have + 1
    for first in range(start, count + 1, 10_000):
        User.objects.bulk_create(
            [
                User(username=f"bench-{i}", password="!")  # unusable password
                for i in range(first, min(first + 10_000, count + 1))
            ],
            batch_size=10_000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE auth_user")


def start_workers(count, env, log):
    workers = []
    for index in range(count):
        command = [sys.executable, "-m", "celery", "-A", "backend", "worker", "--pool=solo",
                   "-n", f"bench{index}@%h", "--without-gossip", "--without-mingle",
                   "-l", "warning"]  # fmt: skip
        workers.append(
            subprocess.Popen(
                command, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log
            )
        )
    return workers


def wait_ready(producer, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(producer.control.ping(timeout=1.0) or []) >= count:
            return
    raise SystemExit(f"{count} workers did not answer a ping within {timeout} s")


def stop_workers(workers):
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def run(size, workers, database_url, timeout):
    import redis
    from celery import Celery
    from django.contrib.auth import get_user_model
    from django.db import connection

    from backend.fakeservices import start_fake_services
    from notifications.models import NotificationLog
    from notifications.testing import FakePushProvider, FakeTodoApi

    NotificationLog.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE notifications_notificationlog")
    redis.Redis.from_url(BROKER_URL).flushdb()
    ids = list(
        get_user_model()
        .objects.filter(username__startswith="bench-")
        .order_by("id")
        .values_list("id", flat=True)[:size]
    )
    push, todo_api = FakePushProvider(), FakeTodoApi()
    todo_api.todos = [
        {"userId": user_id, "id": n, "title": "bench", "completed": False}
        for n, user_id in enumerate(ids, start=1)
    ]
    server = start_fake_services({"/push": push, "/todos-api": todo_api})
    env = {
        **os.environ,
        "DATABASE_URL": database_url + "?conn_max_age=600",
        "CELERY_BROKER_URL": BROKER_URL,
        "PUSH_API_URL": server.url + "/push/",
        "PUSH_APPLICATION": push.application,
        "PUSH_AUTH_KEY": push.auth,
        "TODOS_API_URL": server.url + "/todos-api/",
        "TODOS_TIMEOUT_SECONDS": "60",
        "LOG_LEVEL": "WARNING",
    }
    producer = Celery(broker=BROKER_URL)
    log = open(f"/tmp/bench-reminders-workers-{size}-{workers}.log", "w")
    procs = start_workers(workers, env, log)
    try:
        wait_ready(producer, workers)
        started = time.perf_counter()
        producer.send_task("notifications.tasks.plan_reminders")
        sent = 0
        while sent < size:
            time.sleep(0.25)
            sent = NotificationLog.objects.filter(status="sent").count()
            if time.perf_counter() - started > timeout:
                raise SystemExit(
                    f"{size} users, {workers} workers: only {sent} sent in {timeout} s"
                )
        elapsed = time.perf_counter() - started
    finally:
        stop_workers(procs)
        log.close()
        producer.close()
        server.stop()
    deliveries = push.deliveries_per_user()
    once = len(deliveries) == size and set(deliveries.values()) == {1}
    calls = sum(1 for path, _ in push.requests if path == "/createMessage")
    return {"seconds": elapsed, "once": once, "calls": calls, "duplicates": len(push.duplicates)}


def main():
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    ensure_database(args.database)
    database_url = PG + args.database
    setup_django(database_url)
    seed_users(max(sizes))
    results = {}
    for size in sizes:
        for workers in worker_counts:
            result = run(size, workers, database_url, args.timeout)
            results[size, workers] = result
            print(
                f"  {size:>7} users, {workers} worker(s): {result['seconds']:6.1f} s "
                f"({size / result['seconds']:,.0f}/s, {result['calls']} createMessage calls, "
                f"each delivered once: {result['once']})",
                flush=True,
            )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nReminders on PostgreSQL ({os.cpu_count()} cores, load average {load})")
    header = "".join(f"{f'{w} worker(s)':>16}" for w in worker_counts)
    print(f"{'users':>8}{header}{'speed-up':>11}{'exactly once':>14}")
    for size in sizes:
        cells = "".join(f"{results[size, w]['seconds']:>15.1f}s" for w in worker_counts)
        first, last = results[size, worker_counts[0]], results[size, worker_counts[-1]]
        speedup = first["seconds"] / last["seconds"]
        once = all(results[size, w]["once"] for w in worker_counts)
        print(f"{size:>8}{cells}{speedup:>10.2f}x{once!s:>14}")
    if 100_000 in sizes and 2 in worker_counts:
        best = results[100_000, 2]["seconds"]
        print(
            f"target: 100k users with 2 workers <= 60 s: {best:.1f} s, {'met' if best <= 60 else 'MISSED'}"
        )
    return 0 if all(r["once"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
