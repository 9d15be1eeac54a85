from datetime import timedelta

from django.core.management.base import BaseCommand

from backend import sandbox
from payments.services import reconcile_pending


class Command(BaseCommand):
    help = "Settle payments left pending (timeouts, crashes, Stripe outages) from Stripe's records."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than", type=int, default=300, metavar="SECONDS",
            help="Only payments pending for at least this long (default 300).",
        )  # fmt: skip

    def handle(self, *args, older_than, **options):
        sandbox.activate()
        totals = reconcile_pending(timedelta(seconds=older_than), report=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"settled {totals['settled']}, marked failed {totals['failed']}, "
                f"left pending after errors {totals['errors']}"
            )
        )
