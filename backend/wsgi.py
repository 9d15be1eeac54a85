import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

application = get_wsgi_application()

from backend import checks  # noqa: E402  (needs the app registry)

checks.refuse_unsafe_start()
