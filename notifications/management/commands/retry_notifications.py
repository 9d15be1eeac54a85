from django.core.management.base import BaseCommand

from notifications.reminders import describe
from notifications.tasks import retry_pending


class Command(BaseCommand):
    help = (
        "Send reminders that earlier runs left unsent and are due (backoff elapsed, or a lost "
        "lease); expire those whose day is over. For cron, every minute or so."
    )

    def handle(self, *args, **options):
        summary = retry_pending()
        self.stdout.write(describe(summary))
