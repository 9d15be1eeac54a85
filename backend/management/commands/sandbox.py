from django.core.management.base import BaseCommand, CommandError

from backend import sandbox, sandbox_store


def fakes():
    from notifications import testing as notification_fakes
    from payments import testing as stripe_fakes

    return {
        "stripe": stripe_fakes.shared_engine,
        "push": notification_fakes.push_provider,
        "todos": notification_fakes.todo_api,
    }


class Command(BaseCommand):
    help = (
        "The sandbox's shared state (settings.SANDBOX_STATE): `status` shows where it lives "
        "and what it holds; `reset` empties the fake Stripe, push provider and todo API for "
        "every running worker (payments in the database are kept); `settle-refunds` does "
        "what Stripe does later to the refund test cards' refunds (4000000000007726 pending -> "
        "succeeded, 4000000000005126 succeeded -> failed) and delivers the webhooks."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "reset", "settle-refunds"])

    def handle(self, *args, action, **options):
        if action == "settle-refunds":
            return self.settle_refunds()
        store = sandbox_store.from_settings()
        if store.location == "memory":
            raise CommandError(
                "SANDBOX_STATE is 'memory': the sandbox state lives in each server process; "
                "restart the server to reset it."
            )
        self.stdout.write(f"Sandbox state: {store.location}")
        for name, fake in fakes().items():
            if action == "reset":
                store.run(name, fake, fake.reset)
            summary = store.run(name, fake, lambda fake=fake: self.summary(fake))
            self.stdout.write(f"  {name}: {summary}")
        if action == "reset":
            self.stdout.write("Reset: every worker reloads the empty state on its next call.")
        store.close()

    def settle_refunds(self):
        if "stripe" not in sandbox.wanted():
            raise CommandError("Not in sandbox mode: Stripe settles real refunds by itself.")
        sandbox.activate()
        stripe_fake = sandbox.active("stripe")
        settled = stripe_fake.settle_refunds()
        for refund in settled:
            self.stdout.write(f"  {refund['id']}: {refund['status']}")
        forwarder = sandbox.active("forwarder")
        if forwarder is not None and not forwarder.wait_idle(timeout=30):
            raise CommandError("The backend did not acknowledge every webhook within 30 s.")
        self.stdout.write(f"settled {len(settled)} refunds; webhooks delivered")

    @staticmethod
    def summary(fake):
        if hasattr(fake, "charges"):
            return (
                f"{len(fake.charges)} charges, {len(fake.all('payment_intent'))} payment "
                f"intents, {len(fake.events)} events"
            )
        if hasattr(fake, "outbox"):
            return f"{len(fake.outbox)} notifications sent, {len(fake.devices)} devices"
        return f"{len(fake.todos)} todos"
