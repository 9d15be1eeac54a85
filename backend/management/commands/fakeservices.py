from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fakes.service import app


class Command(BaseCommand):
    help = (
        "Run the sandbox service in this process (fakes.service): the fake Stripe under "
        "/stripe, the push provider under /push, the todo API under /todos-api, their state "
        "kept durable in SANDBOX_STATE, the control API under /control, the console under "
        "/console, the 3-D Secure page under /sandbox/3ds/<intent>/. With --forward-to, every "
        "Stripe event is POSTed there, signed, like `stripe listen --forward-to`. "
        "docs/sandbox.md is the guide."
    )

    def add_arguments(self, parser):
        default_port = urlsplit(settings.SANDBOX_URL).port or app.DEFAULT_PORT
        parser.add_argument(
            "--port",
            type=int,
            default=default_port,
            help="port (default: SANDBOX_URL's; 0: a free one)",
        )
        parser.add_argument(
            "--bind", default="127.0.0.1", help="address (beyond loopback needs a console password)"
        )
        parser.add_argument(
            "--state",
            default=settings.SANDBOX_STATE,
            help="state directory (default: SANDBOX_STATE), or 'memory'",
        )
        parser.add_argument(
            "--forward-to",
            metavar="URL",
            help="deliver webhooks here, signed, e.g. http://127.0.0.1:8000/api/stripe/webhook/",
        )
        parser.add_argument(
            "--webhook-secret",
            metavar="SECRET",
            help="sign them with this whsec_... (default: the state's, else a new one, printed)",
        )
        parser.add_argument(
            "--webhook-retries",
            default="test",
            help="'test' (Stripe test mode: 3 retries over hours), 'live', or seconds: 1,5,30",
        )
        parser.add_argument(
            "--public-url",
            default=settings.SANDBOX_PUBLIC_URL or None,
            help="the address browsers reach the service at (default: SANDBOX_PUBLIC_URL)",
        )
        parser.add_argument(
            "--console-password",
            default=settings.SANDBOX_CONSOLE_PASSWORD or None,
            help="guard /console and /control (default: SANDBOX_CONSOLE_PASSWORD)",
        )
        parser.add_argument("--fsync", action="store_true", help="fsync every journal write")
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

    def handle(self, *args, **options):
        if not 0 <= options["port"] <= 65535:
            raise CommandError(f"--port is a port, 0-65535 (got {options['port']})")
        if options["webhook_secret"] and not options["forward_to"]:
            raise CommandError("--webhook-secret signs forwarded webhooks: add --forward-to URL")
        argv = ["--port", str(options["port"]), "--bind", options["bind"]]
        argv += ["--state", options["state"], "--webhook-retries", options["webhook_retries"]]
        for name in ("forward_to", "webhook_secret", "public_url", "console_password"):
            if options[name]:
                argv += [f"--{name.replace('_', '-')}", options[name]]
        for flag in ("fsync", "stripe_mock", "compact_json"):
            if options[flag]:
                argv.append(f"--{flag.replace('_', '-')}")
        try:
            app.run(app.parser().parse_args(argv), self.stdout)
        except app.ServiceError as error:
            raise CommandError(str(error)) from error
