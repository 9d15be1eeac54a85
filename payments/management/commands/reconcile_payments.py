from datetime import timedelta

from django.core.management.base import BaseCommand

from payments.holds import expire_holds
from payments.reconciliation import reconcile_pending, reconcile_refunds


class Command(BaseCommand):
    help = (
        "Settle payments and refunds left pending (timeouts, crashes, Stripe outages, refunds "
        "Stripe is still processing) from Stripe's records; release holds older than "
        "PAYMENTS_HOLD_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=300,
            metavar="SECONDS",
            help="Only payments and refunds pending for at least this long (default 300).",
        )

    def handle(self, *args, older_than, **options):
        totals = reconcile_pending(timedelta(seconds=older_than), report=self.stdout.write)
        holds = expire_holds(report=self.stdout.write)
        self.stdout.write(f"released {holds['expired']} expired holds ({holds['errors']} errors)")
        self.stdout.write(
            self.style.SUCCESS(
                f"settled {totals['settled']}, marked failed {totals['failed']}, "
                f"left pending after errors {totals['errors']}"
            )
        )
        totals = reconcile_refunds(timedelta(seconds=older_than), report=self.stdout.write)
        self.stdout.write(
            self.style.SUCCESS(
                f"refunds: settled {totals['settled']}, marked failed {totals['failed']}, "
                f"left pending after errors {totals['errors']}"
            )
        )
