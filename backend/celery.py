"""The project's Celery app, configured from Django settings (the CELERY_* block).

    celery -A backend worker -l info        # run the tasks (several processes/hosts)
    celery -A backend beat -l info          # one scheduler: daily plan, periodic retry

With no CELERY_BROKER_URL, tasks run eagerly in the calling process (settings), so the
management commands, `make run` and the tests need no broker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

app = Celery("backend")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
