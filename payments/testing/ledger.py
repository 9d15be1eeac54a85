"""The ledger invariant: every Payment and Refund row agrees with the fake Stripe.

    from payments.testing import assert_ledger_matches
    assert_ledger_matches(engine)            # or self.assertLedgerMatches() in a test

It compares the database with the engine's charges, PaymentIntents and refunds:
ids, status, amount, currency and amount_refunded, and the money rules: a payment is
charged at most once, a refund request is refunded at most once, every object Stripe
holds belongs to exactly one row. A row still `pending` is an honest "not known yet"
(a lost answer before its retry or reconciliation): with pending_ok=True (the default)
it may match zero or one Stripe object; with pending_ok=False it is a difference.

A failure lists every difference, one per line:

    Ledger does not match the fake Stripe (2 differences):
      payment 3 (ch_...): amount_refunded  ledger=600  stripe=300
      refund 7 (re_...): status  ledger=succeeded  stripe=failed
"""

from collections import defaultdict

from fakes.stripe.client import current_engine
from payments.models import Payment, Refund

SETTLED_REFUND = {"succeeded", "pending", "requires_action"}  # counted in amount_refunded


def _metadata(obj, name):
    return str((obj.get("metadata") or {}).get(name, ""))


def status_of_charge(charge):
    """The Payment status a Stripe charge means."""
    if charge["status"] in ("failed", "pending"):
        return charge["status"]
    if not charge.get("captured", True):
        # An authorisation held (manual capture); released, Stripe refunds it in full.
        if charge["amount_refunded"] >= charge["amount"]:
            return Payment.Status.CANCELED.value
        return Payment.Status.REQUIRES_CAPTURE.value
    if charge["amount_refunded"] == 0:
        return Payment.Status.SUCCEEDED.value
    if charge["amount_refunded"] >= charge["amount"]:
        return Payment.Status.REFUNDED.value
    return Payment.Status.PARTIALLY_REFUNDED.value


def status_of_intent(intent, charge):
    if intent["status"] in ("succeeded", "requires_capture") and charge is not None:
        return status_of_charge(charge)
    if intent["status"] == "canceled" and charge is not None and charge["status"] == "succeeded":
        return Payment.Status.CANCELED.value  # a hold released before capture
    return {
        "succeeded": "succeeded",
        "requires_action": "requires_action",
        "requires_payment_method": "failed",
        "canceled": "failed",
    }.get(intent["status"], "pending")


class _Diff:
    def __init__(self):
        self.lines = []

    def add(self, label, message):
        self.lines.append(f"{label}: {message}")

    def compare(self, label, name, ours, theirs):
        if ours != theirs:
            self.add(label, f"{name}  ledger={ours!r}  stripe={theirs!r}")


def ledger_differences(engine, pending_ok=True):
    """Every difference between the database's ledger and the engine, as readable lines."""
    diff = _Diff()
    charges = engine.all("charge")
    intents = engine.all("payment_intent")
    stripe_refunds = engine.all("refund")
    by_id = {obj["id"]: obj for obj in [*charges, *intents, *stripe_refunds]}
    charges_of = defaultdict(list)
    intents_of = defaultdict(list)
    for charge in charges:
        charges_of[_metadata(charge, "payment_id")].append(charge)
    for intent in intents:
        intents_of[_metadata(intent, "payment_id")].append(intent)

    # Refunds Stripe made whose answer we have not heard yet (a row pending without an id):
    # with pending_ok, the payment's figures may lag Stripe's by exactly these.
    unheard = defaultdict(int)
    if pending_ok:
        pending_rows = Refund.objects.filter(
            stripe_refund_id="", status__in=[Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION]
        )
        waiting = {str(ref): pid for ref, pid in pending_rows.values_list("reference", "payment")}
        for obj in stripe_refunds:
            payment_id = waiting.get(_metadata(obj, "refund_reference"))
            if payment_id is not None and obj["status"] in SETTLED_REFUND:
                unheard[payment_id] += obj["amount"]

    payments = {str(p.pk): p for p in Payment.objects.all()}
    for key in sorted(set(charges_of) | set(intents_of)):
        if key not in payments:
            ids = [o["id"] for o in [*charges_of[key], *intents_of[key]]]
            diff.add(f"stripe {', '.join(ids)}", f"no Payment row (metadata payment_id={key!r})")

    for key, payment in payments.items():
        lag = unheard[payment.pk]
        _compare_payment(diff, payment, charges_of[key], intents_of[key], by_id, pending_ok, lag)

    refunds_by_reference = defaultdict(list)
    for obj in stripe_refunds:
        refunds_by_reference[_metadata(obj, "refund_reference")].append(obj)
    rows = list(Refund.objects.select_related("payment").order_by("pk"))
    linked = {row.stripe_refund_id for row in rows if row.stripe_refund_id}
    references = {str(row.reference): row for row in rows}
    for obj in stripe_refunds:
        if obj["id"] in linked:
            continue
        row = references.get(_metadata(obj, "refund_reference"))
        if row is None:
            diff.add(
                f"stripe {obj['id']}",
                f"refund of {obj['amount']} on {obj['charge']} has no Refund row",
            )
    for row in rows:
        _compare_refund(diff, row, by_id, refunds_by_reference, pending_ok)

    _compare_refund_totals(diff, rows, payments.values())
    for charge in charges:  # the fake's own books, so a fake bug cannot hide ours
        total = sum(
            r["amount"]
            for r in stripe_refunds
            if r["charge"] == charge["id"] and r["status"] in SETTLED_REFUND
        )
        if (
            charge.get("captured")
            and charge.get("amount_captured", charge["amount"]) < (charge["amount"])
        ):
            total += charge["amount"] - charge["amount_captured"]  # released at capture
        if total != charge["amount_refunded"]:
            diff.add(
                f"stripe {charge['id']}",
                f"amount_refunded {charge['amount_refunded']} but its refunds sum to {total}",
            )
    return diff.lines


def _as_heard(charge, lag):
    """The charge as the ledger can know it: without refunds whose answer is still unheard."""
    if charge is None or not lag:
        return charge
    return {**charge, "amount_refunded": charge["amount_refunded"] - lag}


def _compare_payment(diff, payment, charges, intents, by_id, pending_ok, lag=0):
    stripe_id = payment.stripe_charge_id or payment.stripe_payment_intent_id or "no Stripe id"
    label = f"payment {payment.pk} ({stripe_id})"
    paid = [c for c in charges if c["status"] == "succeeded"]
    if len(paid) > 1:
        diff.add(label, f"charged {len(paid)} times: {[c['id'] for c in paid]}")
    if len(intents) > 1:
        diff.add(label, f"{len(intents)} PaymentIntents: {[i['id'] for i in intents]}")
    if payment.status == Payment.Status.PENDING:
        if not pending_ok:
            found = [o["id"] for o in [*charges, *intents]]
            diff.add(label, f"still pending (Stripe has {found or 'nothing'})")
        return
    if payment.method == Payment.Method.PAYMENT_METHOD:
        intent = by_id.get(payment.stripe_payment_intent_id)
        if intent is None:
            live = [i["id"] for i in intents if status_of_intent(i, None) != "failed"]
            if live:
                diff.add(label, f"no intent id, but Stripe has {live}")
            elif payment.status != Payment.Status.FAILED:
                diff.add(label, f"status {payment.status!r} but Stripe has no PaymentIntent")
            return
        charge = by_id.get(intent["latest_charge"]) if intent["latest_charge"] else None
        charge = _as_heard(charge, lag)
        diff.compare(label, "status", payment.status, status_of_intent(intent, charge))
        diff.compare(label, "amount", payment.amount, intent["amount"])
        diff.compare(label, "currency", payment.currency, intent["currency"])
        if charge is not None and charge["status"] == "succeeded":
            diff.compare(label, "stripe_charge_id", payment.stripe_charge_id, charge["id"])
            diff.compare(
                label, "amount_refunded", payment.amount_refunded, charge["amount_refunded"]
            )
        return
    charge = _as_heard(by_id.get(payment.stripe_charge_id), lag)
    if charge is None:
        if payment.status != Payment.Status.FAILED:
            diff.add(label, f"status {payment.status!r} but Stripe has no charge for it")
        elif paid:
            diff.add(label, f"failed, but Stripe charged {[c['id'] for c in paid]}")
        return
    diff.compare(label, "status", payment.status, status_of_charge(charge))
    diff.compare(label, "amount", payment.amount, charge["amount"])
    diff.compare(label, "currency", payment.currency, charge["currency"])
    diff.compare(label, "amount_refunded", payment.amount_refunded, charge["amount_refunded"])
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    diff.compare(label, "card_last4", payment.card_last4, card.get("last4"))


def _compare_refund(diff, row, by_id, refunds_by_reference, pending_ok):
    label = f"refund {row.pk} of payment {row.payment_id} ({row.stripe_refund_id or 'no id'})"
    mine = refunds_by_reference.get(str(row.reference), [])
    if len(mine) > 1:
        diff.add(label, f"refunded {len(mine)} times: {[r['id'] for r in mine]}")
    if row.stripe_refund_id:
        obj = by_id.get(row.stripe_refund_id)
        if obj is None or obj.get("object") != "refund":
            diff.add(label, "Stripe has no such refund")
            return
        diff.compare(label, "status", row.status, obj["status"])
        diff.compare(label, "amount", row.amount, obj["amount"])
        diff.compare(label, "charge", row.payment.stripe_charge_id, obj["charge"])
        return
    if row.status in (Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION):
        if not pending_ok:
            found = [r["id"] for r in mine] or "nothing"
            diff.add(label, f"still {row.status} (Stripe has {found})")
        return
    made = [r["id"] for r in mine if r["status"] in SETTLED_REFUND]
    if made:
        diff.add(label, f"{row.status} without a Stripe id, but Stripe refunded {made}")


def _compare_refund_totals(diff, rows, payments):
    """A payment's amount_refunded is the sum of its refunds Stripe counts."""
    totals = defaultdict(int)
    for row in rows:
        if row.stripe_refund_id and row.status in SETTLED_REFUND:
            totals[row.payment_id] += row.amount
    for payment in payments:
        if payment.status == Payment.Status.PENDING:
            continue
        if payment.amount_captured is not None and not payment.capture:
            # A partial capture releases the rest: Stripe counts it as refunded.
            totals[payment.pk] += payment.amount - payment.amount_captured
        if totals[payment.pk] != payment.amount_refunded:
            diff.add(
                f"payment {payment.pk}",
                f"amount_refunded {payment.amount_refunded} but its Refund rows sum to "
                f"{totals[payment.pk]}",
            )


def assert_ledger_matches(engine=None, pending_ok=True, msg=None):
    """Fail, listing every difference, unless the ledger equals the fake Stripe's records."""
    if engine is None:
        engine = current_engine()
    lines = ledger_differences(engine, pending_ok=pending_ok)
    if lines:
        heading = f"Ledger does not match the fake Stripe ({len(lines)} difference"
        heading += "s)" if len(lines) != 1 else ")"
        if msg:
            heading = f"{msg}: {heading}"
        raise AssertionError("\n  ".join([heading + ":", *lines]))


class LedgerAssertionsMixin:
    """self.assertLedgerMatches(): the invariant on self.stripe (FakeStripeMixin) by default."""

    def assertLedgerMatches(self, engine=None, pending_ok=True, msg=None):
        assert_ledger_matches(engine or getattr(self, "stripe", None), pending_ok, msg)
