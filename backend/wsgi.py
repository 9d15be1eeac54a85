import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

application = get_wsgi_application()

from backend import checks, sandbox  # noqa: E402  (needs the app registry)

sandbox.activate()
checks.refuse_unsafe_start()
