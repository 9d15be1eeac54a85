"""The sandbox service: the provider fakes as ONE process that owns their state.

Like Stripe's test mode (one service every client reaches at its API base), LocalStack
(every fake behind one port, state kept across restarts) and Mailpit (a console of what
was sent), the service serves the fake Stripe, the push provider and the todo API under
their paths, keeps their state in memory and durable on disk (journal.py), forwards
Stripe's events as signed webhooks (webhooks.py), hosts the 3-D Secure page (threeds.py),
and lets tests, commands and people steer it: the control API (control.py) and the
console (console.py). It imports no web framework and nothing of the backend.

    python -m fakes.service --state sandbox-state --forward-to http://127.0.0.1:8000/api/stripe/webhook/

    from fakes.service import start_service
    with start_service() as running:          # a thread of this process, a free port
        running.url, running.service.stripe   # the service, and its fake Stripe
"""

from fakes.service.app import (
    DEFAULT_PORT,
    RunningService,
    bind,
    environment,
    main,
    mounts,
    start_service,
)
from fakes.service.service import SandboxService, new_webhook_secret

__all__ = [
    "DEFAULT_PORT",
    "RunningService",
    "SandboxService",
    "bind",
    "environment",
    "main",
    "mounts",
    "new_webhook_secret",
    "start_service",
]
