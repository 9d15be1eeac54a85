from django.core.management.base import BaseCommand, CommandError

from backend.fakes import FakeServer
from backend.fakeservices import default_mounts
from notifications.testing import FAKE_APPLICATION, FAKE_AUTH


class Command(BaseCommand):
    help = (
        "Serve the fake third-party services over HTTP on 127.0.0.1: Stripe under /stripe, "
        "the push provider under /push, the todo API under /todos-api."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8765, help="Port (0 picks a free one).")

    def handle(self, *args, port, **options):
        try:
            server = FakeServer(default_mounts(), port=port, freeze_gc=True)
        except OSError as error:
            raise CommandError(f"cannot listen on 127.0.0.1:{port}: {error}") from error
        base = server.url
        self.stdout.write(f"Fake services on {base} (Ctrl-C to stop)")
        for prefix in server.mounts:
            self.stdout.write(f"  {base}{prefix}/")
        self.stdout.write("Point a backend at them with:")
        self.stdout.write(
            f"  STRIPE_SECRET_KEY=sk_test_local STRIPE_API_BASE={base}/stripe "
            f"PUSH_API_URL={base}/push/ PUSH_APPLICATION={FAKE_APPLICATION} "
            f"PUSH_AUTH_KEY={FAKE_AUTH} TODOS_API_URL={base}/todos-api/"
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
