from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from backend import sandbox
from payments.checkout import expire_holds
from payments.services import reconcile_pending


class Command(BaseCommand):
    help = (
        "Settle payments left pending (timeouts, crashes, Stripe outages) from Stripe's "
        "records; release holds older than PAYMENTS_HOLD_DAYS."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=300,
            metavar="SECONDS",
            help="Only payments pending for at least this long (default 300).",
        )

    def handle(self, *args, older_than, **options):
        if "stripe" in sandbox.wanted():
            # The sandbox's fake Stripe lives inside the server process: this process would
            # see an empty Stripe and mark every pending payment as never charged.
            raise CommandError(
                "Sandbox mode: the fake Stripe's records live in the server process, so there "
                "is nothing here to reconcile against. Run `manage.py fakeservices` and point "
                "both the server and this command at it (STRIPE_SECRET_KEY=sk_test_local "
                "STRIPE_API_BASE=http://127.0.0.1:8765/stripe)."
            )
        totals = reconcile_pending(timedelta(seconds=older_than), report=self.stdout.write)
        holds = expire_holds(report=self.stdout.write)
        self.stdout.write(f"released {holds['expired']} expired holds ({holds['errors']} errors)")
        self.stdout.write(
            self.style.SUCCESS(
                f"settled {totals['settled']}, marked failed {totals['failed']}, "
                f"left pending after errors {totals['errors']}"
            )
        )
