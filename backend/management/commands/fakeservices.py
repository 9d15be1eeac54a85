from django.core.management.base import BaseCommand, CommandError

from backend.fakeservices import default_mounts, forwarding_stripe
from backend.sandbox_store import new_webhook_secret
from fakes.pushwoosh import FAKE_APPLICATION, FAKE_AUTH
from fakes.server import FakeServer


class Command(BaseCommand):
    help = (
        "Serve the fake third-party services over HTTP on 127.0.0.1: Stripe under /stripe, "
        "the push provider under /push, the todo API under /todos-api. With --forward-to, "
        "every event the fake Stripe emits is POSTed there, signed, like "
        "`stripe listen --forward-to`."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765, help="Port (0 picks a free one).")
        parser.add_argument(
            "--forward-to",
            metavar="URL",
            help="Deliver webhooks to this loopback URL, e.g. "
            "http://127.0.0.1:8000/api/stripe/webhook/ (retried until acknowledged).",
        )
        parser.add_argument(
            "--stripe-mock",
            action="store_true",
            help="stripe-mock-compatible mode: the fake Stripe also answers at the root "
            "(/v1/...), and an id it never issued answers a complete object of its resource, "
            "as stripe-mock does, so a suite written for stripe-mock runs unchanged.",
        )
        parser.add_argument(
            "--compact-json",
            action="store_true",
            help="Answer compact JSON rather than api.stripe.com's indented JSON (faster).",
        )
        parser.add_argument(
            "--webhook-secret",
            metavar="SECRET",
            help="Sign webhooks with this secret (default: a new whsec_... printed at start); "
            "give the backend the same as STRIPE_WEBHOOK_SECRET.",
        )

    def handle(self, *args, port, forward_to=None, webhook_secret=None, stripe_mock=False,
               compact_json=False, **options):  # fmt: skip
        if webhook_secret and not forward_to:
            raise CommandError("--webhook-secret signs forwarded webhooks: add --forward-to URL")
        secret = webhook_secret or new_webhook_secret()
        try:
            stripe_fake, forwarder = forwarding_stripe(forward_to, secret)
        except ValueError as error:
            raise CommandError(str(error)) from error
        stripe_fake.engine.stripe_mock = stripe_mock
        stripe_fake.engine.compact_json = compact_json
        mounts = default_mounts(stripe_fake)
        if stripe_mock:
            mounts["/"] = stripe_fake  # http://127.0.0.1:PORT/v1/..., as stripe-mock serves
        try:
            server = FakeServer(mounts, port=port, freeze_gc=True)
        except OSError as error:
            raise CommandError(f"cannot listen on 127.0.0.1:{port}: {error}") from error
        base = server.url
        stripe_fake.public_url = base  # 3-D Secure links: {base}/sandbox/3ds/<pi_...>/
        self.stdout.write(f"Fake services on {base} (Ctrl-C to stop)")
        for prefix in server.mounts:
            self.stdout.write(f"  {base}{prefix}/")
        self.stdout.write(f"3-D Secure page: {base}/sandbox/3ds/<pi_...>/")
        environment = (
            f"STRIPE_SECRET_KEY=sk_test_local STRIPE_API_BASE={base}/stripe "
            f"PUSH_API_URL={base}/push/ PUSH_APPLICATION={FAKE_APPLICATION} "
            f"PUSH_AUTH_KEY={FAKE_AUTH} TODOS_API_URL={base}/todos-api/"
        )
        if forwarder is not None:
            self.stdout.write(f"Forwarding webhooks to {forward_to}")
            self.stdout.write(f"Your webhook signing secret is {secret}")
            environment += f" STRIPE_WEBHOOK_SECRET={secret}"
        self.stdout.write("Point a backend at them with:")
        self.stdout.write(f"  {environment}")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            if forwarder is not None:
                forwarder.stop()
