from django.core.management.base import BaseCommand

from accounts import services


class Command(BaseCommand):
    help = (
        "Sign out expired device sessions (with their push registrations) and retry "
        "push unregistrations left by a provider outage. Run from cron, e.g. hourly."
    )

    def handle(self, *args, **options):
        expired = services.purge_expired_sessions()
        done, left = services.unregister_pending()
        self.stdout.write(
            f"signed out {expired} expired session(s); unregistered {done} push device(s), "
            f"{left} left to retry"
        )
        if left:
            self.stderr.write("some push devices could not be unregistered; run again later")
