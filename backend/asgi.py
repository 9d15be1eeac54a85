import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.settings")

application = get_asgi_application()

from backend import checks  # noqa: E402  (needs the app registry)

checks.refuse_unsafe_start()
