from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from backend import sandbox, sandbox_store
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
        if "stripe" in sandbox.wanted():
            if sandbox_store.from_settings().location == "memory":
                # The fake Stripe's records live inside each server process: this process
                # would see an empty Stripe and mark every pending payment never charged.
                raise CommandError(
                    "Sandbox mode with SANDBOX_STATE=memory: the fake Stripe's records live "
                    "in the server process, so there is nothing here to reconcile against. "
                    "Use the default file state, or run `manage.py fakeservices` and point "
                    "both the server and this command at it (STRIPE_SECRET_KEY=sk_test_local "
                    "STRIPE_API_BASE=http://127.0.0.1:8765/stripe)."
                )
            sandbox.activate()  # the shared sandbox state every server worker uses
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
