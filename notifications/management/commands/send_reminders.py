from django.core.management.base import BaseCommand, CommandError

from notifications.reminders import describe
from notifications.tasks import send_reminder
from notifications.todos import TodoApiError


class Command(BaseCommand):
    help = "Push a reminder to every user with unfinished todos (once a day; for cron)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be sent; send nothing."
        )

    def handle(self, *args, dry_run, **options):
        self.stdout.write("Reading todos...")
        try:
            summary = send_reminder(dry_run=dry_run)
        except TodoApiError as error:
            raise CommandError(f"todo API unavailable, nothing sent: {error}") from error
        if dry_run:
            for user_id, text in summary["would_send"]:
                self.stdout.write(f"  would send to user {user_id}: {text}")
            self.stdout.write(f"dry run: {len(summary['would_send'])} reminders, none sent")
            return
        self.stdout.write(describe(summary))
