import argparse
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backend import sandbox

SERVICES = ("stripe", "push", "todos")


def seconds_late(text):
    """argparse type for --delay: seconds, above 0 and at most 600 (as the service takes)."""
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds <= 600:  # (NaN too)
        raise argparse.ArgumentTypeError(f"seconds above 0 and at most 600 (got {text})")
    return seconds


def port_taken(host, port):
    """Why `port` cannot be listened on at `host`, or None (a bind that is let go at once)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


class Command(BaseCommand):
    help = (
        "The sandbox: `serve` runs the sandbox service and this backend together (staging); "
        "the other actions talk to a running service's control API (SANDBOX_URL): `status`, "
        "`reset`, `fault SERVICE METHOD PATH KIND [--times N]` / `fault clear`, `clock "
        "advance DURATION`, `trigger EVENT`, `settle-refunds`, `redeliver EVENT`. Every "
        "worker, and every backend host, sees the change at once. docs/sandbox.md is the guide."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, parser_class=CommandParser)

        serve = actions.add_parser("serve", help="the sandbox service + the backend (gunicorn)")
        serve.add_argument(
            "--port", type=int, default=8000, help="the backend's port (default 8000)"
        )
        serve.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
        serve.add_argument("--threads", type=int, default=4, help="threads per worker (default 4)")
        serve.add_argument(
            "--service-port",
            type=int,
            default=urlsplit(settings.SANDBOX_URL).port or 8765,
            help="the sandbox service's port (default: SANDBOX_URL's, 8765)",
        )
        serve.add_argument(
            "--bind",
            default="127.0.0.1",
            help="address of both (beyond loopback needs SANDBOX_CONSOLE_PASSWORD)",
        )
        serve.add_argument("--state", default=settings.SANDBOX_STATE, help="default: SANDBOX_STATE")
        serve.add_argument(
            "--public-url",
            default=settings.SANDBOX_PUBLIC_URL,
            help="the service's address for browsers (3-D Secure links; default SANDBOX_PUBLIC_URL)",
        )
        serve.add_argument(
            "--webhook-retries", default="test", help="'test' (Stripe test mode), 'live' or 1,5,30"
        )
        serve.add_argument(
            "--runserver", action="store_true", help="Django's runserver instead of gunicorn"
        )
        serve.add_argument("--no-migrate", action="store_true", help="do not migrate first")

        status = actions.add_parser("status", help="what the sandbox holds")
        status.add_argument("--json", action="store_true")
        actions.add_parser("reset", help="empty every fake for every worker")

        fault = actions.add_parser(
            "fault", help="switch a fault on for every client: SERVICE METHOD PATH KIND, or clear"
        )
        fault.add_argument("service", help=f"{', '.join(SERVICES)}, or `clear`")
        fault.add_argument(
            "method", nargs="?", help="POST, GET, DELETE or * (with `clear`: a service)"
        )
        fault.add_argument(
            "path", nargs="?", help="e.g. /v1/charges (a trailing * is a prefix), or *"
        )
        fault.add_argument(
            "kind",
            nargs="?",
            help="5xx (api_error), 429 (rate_limit), timeout, reset (connection_error), "
            "lost (lost_response: done, the answer never comes), slow (slow_response)",
        )
        fault.add_argument("--times", type=int, default=1, help="for the next N calls (default 1)")
        fault.add_argument(
            "--after", type=int, default=0, help="let N matching calls through first"
        )
        fault.add_argument(
            "--delay", type=seconds_late, help="slow: seconds late, at most 600 (default 5)"
        )
        actions.add_parser("faults", help="the faults switched on")

        clock = actions.add_parser("clock", help="show the sandbox's time, or `advance DURATION`")
        clock.add_argument("verb", nargs="?", choices=["advance"])
        clock.add_argument("duration", nargs="?", help="e.g. 90s, 15m, 2h, 7d, 1h30m")

        trigger = actions.add_parser("trigger", help="like `stripe trigger EVENT`")
        trigger.add_argument("event", nargs="?", help="e.g. payment_intent.succeeded")
        trigger.add_argument("--list", action="store_true", help="the events it can trigger")

        actions.add_parser("settle-refunds", help="what Stripe does later to the refund test cards")
        redeliver = actions.add_parser("redeliver", help="send an event's webhook again")
        redeliver.add_argument("event")
        events = actions.add_parser("events", help="the latest events and their deliveries")
        events.add_argument("--limit", type=int, default=20)

    def handle(self, *args, action, **options):
        if action == "serve":
            return self.serve(options)
        control = sandbox.client()
        try:
            getattr(self, action.replace("-", "_"))(control, options)
        except sandbox.SandboxUnavailable as error:
            raise CommandError(str(error)) from error
        finally:
            control.close()

    # ------------------------------------------------------------------ serve
    def serve(self, options):
        from backend.sandbox_serve import Supervisor
        from fakes.netguard import is_loopback

        if not is_loopback(options["bind"]) and not settings.SANDBOX_CONSOLE_PASSWORD:
            raise CommandError(
                f"--bind {options['bind']} reaches beyond this machine: set "
                "SANDBOX_CONSOLE_PASSWORD first (it guards the console and the control API)."
            )
        if options["workers"] < 1 or options["threads"] < 1:
            raise CommandError("--workers and --threads are 1 or more")
        if options["port"] == options["service_port"]:
            raise CommandError(
                "--port and --service-port are two ports (the backend's, the service's)"
            )
        for flag, port in (
            ("--port", options["port"]),
            ("--service-port", options["service_port"]),
        ):
            if not 1 <= port <= 65535:
                raise CommandError(f"{flag} is a port, 1-65535 (got {port})")
            taken = port_taken(options["bind"], port)
            if taken:  # before anything starts: its readiness check would reach the other
                raise CommandError(f"{flag} {port} on {options['bind']} is taken ({taken})")
        if not options["no_migrate"]:
            call_command("migrate", "--noinput", verbosity=0)
        options["console_password"] = settings.SANDBOX_CONSOLE_PASSWORD
        supervisor = Supervisor(
            options, lambda line: (self.stdout.write(line), self.stdout.flush())
        )
        try:
            supervisor.run()
        except RuntimeError as error:
            raise CommandError(str(error)) from error

    # ------------------------------------------------------------------ control
    def status(self, control, options):
        found = control.get("status")
        if options.get("json"):
            self.stdout.write(sandbox.pretty(found))
            return
        stripe, push, hooks = found["stripe"], found["push"], found["webhooks"]
        self.stdout.write(
            f"Sandbox service: {found['url']} (console {found['public_url']}/console/)"
        )
        self.stdout.write(f"  state: {found['state']}")
        self.stdout.write(
            f"  clock: {found['clock']['iso']} (+{found['clock']['offset_seconds']:g} s)"
        )
        self.stdout.write(
            f"  stripe: {stripe['charge']} charges, {stripe['payment_intent']} payment intents, "
            f"{stripe['refund']} refunds, {stripe['customer']} customers, {stripe['event']} events"
        )
        self.stdout.write(
            f"  push: {push['notifications']} notifications sent, {push['devices']} devices"
        )
        self.stdout.write(f"  todos: {found['todos']['todos']} todos")
        self.stdout.write(
            f"  webhooks to {hooks['url'] or '(none)'}: {hooks['delivered']} delivered, "
            f"{hooks['pending']} pending, {hooks['failed']} failed"
        )
        self.write_faults(found["faults"])

    def reset(self, control, options):
        control.post("reset")
        self.stdout.write(
            "Reset: every fake is empty for every worker (the database keeps its rows)."
        )

    def fault(self, control, options):
        if options["service"] == "clear":
            service = options["method"]
            if service is not None and service not in SERVICES:
                raise CommandError(
                    f"`fault clear [SERVICE]`: SERVICE is one of {', '.join(SERVICES)}"
                )
            if options["path"] or options["kind"]:  # (once silently ignored)
                raise CommandError("`fault clear [SERVICE]`: one service, or none for every one")
            body = {"service": service} if service else {}
            self.write_faults(control.post("faults/clear", body)["data"])
            return
        missing = [name for name in ("method", "path", "kind") if not options[name]]
        if missing:
            raise CommandError(f"fault SERVICE METHOD PATH KIND: missing {', '.join(missing)}")
        body = {
            "service": options["service"],
            "method": options["method"],
            "path": options["path"],
            "kind": options["kind"],
            "times": options["times"],
            "after": options["after"],
        }
        if options["delay"] is not None:
            body["delay"] = options["delay"]
        self.write_faults(control.post("faults", body)["data"])

    def faults(self, control, options):
        self.write_faults(control.get("faults")["data"])

    def write_faults(self, faults):
        if not faults:
            self.stdout.write("  faults: none (every call answers normally)")
            return
        self.stdout.write(f"  faults ({len(faults)} calls to strike):")
        for fault in faults:
            after = f" after {fault['after']} calls" if fault["after"] else ""
            self.stdout.write(f"    {fault['service']} {fault['endpoint']}: {fault['kind']}{after}")

    def clock(self, control, options):
        if options["verb"] is None:
            found = control.get("clock")
            self.stdout.write(f"Sandbox time: {found['iso']} (+{found['offset_seconds']:g} s)")
            return
        if not options["duration"]:
            raise CommandError("clock advance DURATION, e.g. 2h or 7d")
        found = control.post("clock/advance", {"duration": options["duration"]})
        self.stdout.write(f"Sandbox time: {found['iso']} (+{found['offset_seconds']:g} s)")
        for intent in found["expired_payment_intents"]:
            self.stdout.write(f"  hold expired: {intent}")
        for refund in found["settled_refunds"]:
            self.stdout.write(f"  refund settled: {refund['id']} {refund['status']}")
        self.run_due_reminders(found["now"])

    def run_due_reminders(self, now):
        """What falls due on this backend at the sandbox's time: reminder retries."""
        from datetime import UTC, datetime

        from notifications.reminders import describe, retry_pending

        if "push" not in settings.SANDBOX_SERVICES:
            return
        summary = retry_pending(now=datetime.fromtimestamp(now, UTC))
        self.stdout.write(f"  reminders due at that time: {describe(summary)}")

    def trigger(self, control, options):
        if options["list"] or not options["event"]:
            for name in control.get("triggers")["data"]:
                self.stdout.write(name)
            return
        found = control.post("trigger", {"event": options["event"]})
        for request in found["requests"]:
            self.stdout.write(f"  {request['step']}: {request['status']} {request['id'] or ''}")
        for event in found["events"]:
            self.stdout.write(f"  event {event['id']} {event['type']}")
        self.stdout.write(f"Triggered {found['trigger']}.")

    def settle_refunds(self, control, options):
        settled = control.post("stripe/settle-refunds")["data"]
        for refund in settled:
            self.stdout.write(f"  {refund['id']}: {refund['status']}")
        self.stdout.write(f"settled {len(settled)} refunds; their webhooks are on their way")

    def redeliver(self, control, options):
        found = control.post(f"events/{options['event']}/redeliver")
        self.stdout.write(
            f"Redelivery of {found['event']} queued ({len(found['attempts'])} attempts so far)."
        )

    def events(self, control, options):
        for event in control.get("events", limit=options["limit"])["data"]:
            delivery = event["delivery"]
            state = (
                "not sent"
                if delivery is None
                else f"{delivery['status']}, {len(delivery['attempts'])} attempts"
            )
            self.stdout.write(f"{event['id']}  {event['type']:<40} {state}")
