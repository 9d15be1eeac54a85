from django.core.management.base import BaseCommand

from backend import sandbox
from notifications.tasks import retry_pending


class Command(BaseCommand):
    help = "Send reminders that earlier runs left pending or failed (the provider was down)."

    def handle(self, *args, **options):
        sandbox.activate()
        summary = retry_pending()
        self.stdout.write(f"sent {summary['sent']}, left pending {summary['pending']}")
