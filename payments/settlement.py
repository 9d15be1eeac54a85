"""Settlement: the one place where a Stripe object becomes our record.

Whatever brought the object (the answer to our own call, a webhook, reconciliation, a
staff capture or cancel), it is applied here and only here:

- under the payment's row lock (`select_for_update`), so two sources never interleave;
- forwards only: a payment moves to a later stage, never back (`may_move`), and its refund
  figures follow the newest refund list Stripe has shown (`refund_version`). An older
  object (Stripe's idempotent replay of a first answer, a late or redelivered event)
  changes nothing it should not;
- writing only the fields that changed, in one UPDATE, so nothing another source wrote is
  erased: a webhook cannot wipe the answer the paying request stored.

Settlement may read from Stripe before it locks (a PaymentMethod for the card's last four,
a charge's complete refund list); it never changes anything at Stripe, and no lock is held
while Stripe is called.
"""

import logging
import uuid

import stripe
from django.db import transaction
from django.utils import timezone

from payments.models import Payment, Refund
from payments.stripe_objects import card_of, charge_refunds, field, metadata

logger = logging.getLogger(__name__)

Status = Payment.Status
PAID = (Status.SUCCEEDED, Status.PARTIALLY_REFUNDED, Status.REFUNDED)
OPEN = (Status.PENDING, Status.REQUIRES_ACTION)
# How far a payment has got. Money taken (PAID) and a released hold (CANCELED) are final at
# Stripe; a decline (FAILED) can still be followed by success, a hold by its capture.
STAGE = {
    Status.PENDING: 0,
    Status.REQUIRES_ACTION: 0,
    Status.FAILED: 1,
    Status.REQUIRES_CAPTURE: 2,
    Status.SUCCEEDED: 3,
    Status.PARTIALLY_REFUNDED: 3,
    Status.REFUNDED: 3,
    Status.CANCELED: 3,
}

# How far a Stripe refund has got. A refund only ever moves up: pending/requires_action ->
# succeeded -> failed (a card refund can fail after succeeding: test card 4000000000005126),
# or pending/requires_action -> failed/canceled.
REFUND_RANK = {"pending": 0, "requires_action": 0, "succeeded": 1, "failed": 2, "canceled": 2}
UNSETTLED_REFUNDS = (Refund.Status.PENDING, Refund.Status.REQUIRES_ACTION)

# What settlement may change on a payment (the request's own answer and claim aside).
FIELDS = (
    "status",
    "amount_captured",
    "amount_refunded",
    "refund_version",
    "stripe_token_id",
    "stripe_charge_id",
    "stripe_payment_intent_id",
    "card_brand",
    "card_last4",
    "failure_code",
    "decline_code",
    "failure_message",
)


def may_move(current, new):
    """Whether a Stripe object saying `new` may move a payment that is `current`."""
    if new == current or (current in OPEN and new in OPEN):
        return True  # between the two open stages, the latest word
    if current in PAID:
        return new in PAID  # and then the refund figures decide which (follow_refunds)
    return STAGE[new] > STAGE[current]


def refund_version(refunds):
    """A number that grows with every change of a charge's refunds, and never shrinks.

    Refunds are only ever added to a charge, and each refund's status only moves up
    REFUND_RANK, so (number of refunds + sum of their ranks) strictly increases with each
    change. A snapshot of the charge (a webhook, an answer, a fetch) with a lower version
    than the one applied is older: it never moves the ledger back, whatever order the
    snapshots arrive in. Stripe's amount_refunded itself is not monotonic (a failed refund
    gives its amount back), so it cannot serve as the clock.
    """
    return sum(1 + REFUND_RANK.get(field(obj, "status", "pending"), 0) for obj in refunds)


def refund_status(payment):
    """SUCCEEDED, PARTIALLY_REFUNDED or REFUNDED, from the payment's refund figures."""
    # after a partial capture Stripe counts the released rest in amount_refunded
    released = 0 if payment.amount_captured is None else payment.amount - payment.amount_captured
    if payment.amount_refunded <= released:
        return Status.SUCCEEDED
    if payment.amount_refunded >= payment.amount:
        return Status.REFUNDED
    return Status.PARTIALLY_REFUNDED


def failed_status(payment, intent_status="requires_payment_method"):
    """A declined attempt ends a server-confirmed payment; a PaymentSheet payment stays
    pending (the customer may try another card on the same PaymentIntent), and so does an
    off-session payment waiting for the customer to come back and authenticate."""
    if intent_status == "canceled":
        return Status.FAILED
    if payment.method == Payment.Method.PAYMENT_SHEET:
        return Status.PENDING
    if payment.status == Status.REQUIRES_ACTION and (
        payment.decline_code == "authentication_required"
    ):
        return Status.REQUIRES_ACTION  # off-session: waiting for the customer
    return Status.FAILED


# ------------------------------------------------------------------ the one write
def settle(payment, apply, *, token_id="", claim=None, answer=None, pure=False, fresh=False):
    """Apply `apply(row)` to the locked row and write what changed; returns (row, answer).

    `claim` is the `locked_until` the calling request wrote when it took the row: if the
    row still holds it (nobody took it over) and has no stored answer, the claim is
    released and a final `answer(row)` -> (status, body, headers, final) is stored, in the
    same UPDATE. The answer is built from the settled row, so it shows the payment as it
    is now, never an older object's figures.

    A source with nothing of its own to store (a webhook, reconciliation: no claim, no
    answer, no token) whose `apply` only sets the row's fields (`pure`: it writes no other
    row, such as a Refund) first applies the object to the row as it is, unlocked: when
    that changes nothing, nothing is written and no lock is taken (the same as if the
    object had been applied, under the lock, at that moment). A webhook repeating what the
    paying request already settled, the common case, then costs no query at all:
    `fresh=True` says `payment` was just read (events.apply_event), so it is that moment's
    row.
    """
    if pure and claim is None and answer is None and not token_id:
        row = payment if fresh else Payment.objects.get(pk=payment.pk)
        if not _apply_changes(row, apply, token_id):
            return row, None
    with transaction.atomic():
        row = Payment.objects.select_for_update().get(pk=payment.pk)
        changes = _apply_changes(row, apply, token_id)
        owner = claim is not None and row.locked_until == claim and row.response_body is None
        if changes or owner:
            # .update(), not .save(): auto_now would stamp a later time than the answer shows
            row.updated_at = changes["updated_at"] = timezone.now()
        answered = answer(row) if answer is not None else None
        if owner:
            row.locked_until = changes["locked_until"] = None
            if answered is not None and answered[3]:  # final: a retry replays it
                row.response_status = changes["response_status"] = answered[0]
                row.response_body = changes["response_body"] = answered[1]
        if changes:
            Payment.objects.filter(pk=row.pk).update(**changes)
    return row, answered


def _apply_changes(row, apply, token_id):
    """Apply to `row` in memory; {field: new value} of what changed."""
    before = {name: getattr(row, name) for name in FIELDS}
    if token_id and not row.stripe_token_id:
        row.stripe_token_id = token_id
    apply(row)
    follow_refunds(row)
    return {name: getattr(row, name) for name in FIELDS if getattr(row, name) != before[name]}


def move(row, status):
    """Set `status` if it is forward (see may_move); True if the object's word was taken."""
    if not may_move(row.status, status):
        return False
    if not (row.status in PAID and status in PAID):
        row.status = status
    return True


def follow_refunds(row):
    if row.status in PAID:
        row.status = refund_status(row)


def set_ids(row, moved, charge_id=None, intent_id=None):
    """Stripe ids: filled in when missing; replaced only by an object that moved the row
    (a PaymentSheet's second attempt has a new charge; an older attempt's does not win)."""
    for name, value in (("stripe_charge_id", charge_id), ("stripe_payment_intent_id", intent_id)):
        if isinstance(value, str) and value and (moved or not getattr(row, name)):
            setattr(row, name, value[:255])


def set_card(row, card):
    if card and not row.card_last4:
        row.card_brand, row.card_last4 = card


def set_failure(row, code, decline_code, message):
    row.failure_code = (code or "")[:64]
    row.decline_code = (decline_code or "")[:64]
    row.failure_message = (message or "")[:500]


# ------------------------------------------------------------------ what Stripe says
def apply_charge(row, charge):
    status = field(charge, "status")
    if status == "succeeded" and not field(charge, "captured", True):
        moved = move(row, Status.REQUIRES_CAPTURE)  # an authorisation held
    elif status == "succeeded":
        moved = move(row, Status.SUCCEEDED)
        if moved and field(charge, "amount_captured") is not None:
            row.amount_captured = charge["amount_captured"]
    elif status == "failed":
        moved = move(row, failed_status(row))
        if moved:
            set_failure(row, field(charge, "failure_code"), "", field(charge, "failure_message"))
    else:
        moved = False  # pending: nothing known yet
    set_ids(row, moved, charge_id=field(charge, "id"), intent_id=field(charge, "payment_intent"))
    set_card(row, card_of(field(charge, "payment_method_details", {})))
    listed = charge_refunds(charge)
    if listed is not None:
        apply_refund_list(row, field(charge, "amount_refunded", 0), listed)


def apply_intent(row, intent, card=None):
    status = field(intent, "status")
    if status == "succeeded":
        moved = move(row, Status.SUCCEEDED)
    elif status == "requires_capture":
        moved = move(row, Status.REQUIRES_CAPTURE)
    elif status == "requires_action":
        moved = move(row, Status.REQUIRES_ACTION)
    elif status == "canceled" and row.status == Status.REQUIRES_CAPTURE:
        moved = move(row, Status.CANCELED)  # the hold was released
    elif status in ("requires_payment_method", "canceled"):
        moved = move(row, failed_status(row, status))
        if moved:
            error = field(intent, "last_payment_error", {})
            set_failure(
                row,
                field(error, "code", status),
                field(error, "decline_code", ""),
                field(error, "message", ""),
            )
    else:
        moved = False  # processing, requires_confirmation: nothing to record yet
    set_ids(row, moved, charge_id=field(intent, "latest_charge"), intent_id=field(intent, "id"))
    if status == "succeeded" and row.status in PAID:
        apply_captured(row, intent)
    set_card(row, card)


def apply_captured(row, intent):
    """Stripe's captured figure; after a partial capture the rest is released, which Stripe
    counts in the charge's amount_refunded (docs.stripe.com/api/charges/capture)."""
    received = field(intent, "amount_received")
    if row.capture or received is None:
        return
    row.amount_captured = received
    row.amount_refunded = max(row.amount_refunded, row.amount - received)


def apply_refund_list(row, amount_refunded, listed):
    """A charge's complete refund list: its figure, unless an older one than applied."""
    version = refund_version(listed)
    if version >= row.refund_version:
        row.refund_version = version
        row.amount_refunded = amount_refunded
    for obj in listed:
        upsert_refund(row, obj)


# ------------------------------------------------------------------ the entry points
def settle_charge(payment, charge, **context):
    """A Charge (the answer to Charge.create, charge.* webhooks, reconciliation)."""
    pure = not charge_refunds(charge)  # each refund listed is upserted as a Refund row
    return settle(payment, lambda row: apply_charge(row, charge), pure=pure, **context)


def settle_intent(payment, intent, **context):
    """A PaymentIntent (our confirm, a capture or cancel, payment_intent.* webhooks)."""
    card = None
    if not payment.card_last4 and field(intent, "status") in ("succeeded", "requires_capture"):
        card = intent_card(payment, intent)  # before the lock: it may ask Stripe
    return settle(payment, lambda row: apply_intent(row, intent, card), pure=True, **context)


def settle_failure(payment, code, decline_code, message, **context):
    """Stripe declined or refused our request, or has no record of it: the payment failed
    (unless something already moved it further: a decline never undoes a success)."""

    def apply(row):
        if move(row, Status.FAILED):
            set_failure(row, code, decline_code, message)

    return settle(payment, apply, **context)


def settle_authentication_required(payment, intent, message, **context):
    """An off-session payment the bank wants the customer back for: the PaymentIntent
    waits (requires_action) until they confirm it on-session."""

    def apply(row):
        moved = move(row, Status.REQUIRES_ACTION)
        if moved:
            set_failure(row, "authentication_required", "authentication_required", message)
        set_ids(row, moved, charge_id=field(intent, "latest_charge"), intent_id=field(intent, "id"))

    return settle(payment, apply, **context)


def intent_card(payment, intent):
    """(brand, last4) of the intent's PaymentMethod (like a charge's own details)."""
    method = field(intent, "payment_method")
    if not method:
        return None
    if isinstance(method, str):
        try:
            method = stripe.PaymentMethod.retrieve(method)
        except stripe.StripeError as error:
            logger.warning("No card details for payment %s: %s", payment.pk, type(error).__name__)
            return None
    return card_of(method)


# ------------------------------------------------------------------ refunds
def settle_refunds(payment, refund_objects=(), charge=None):
    """Apply Stripe refunds (each moved forward only) and, when `charge` carries its complete
    refund list, the payment's figures from it; under the payment's row lock."""

    def apply(row):
        for obj in refund_objects:
            upsert_refund(row, obj)
        listed = charge_refunds(charge) if charge is not None else None
        if listed is not None:
            apply_refund_list(row, field(charge, "amount_refunded", 0), listed)

    return settle(payment, apply)[0]


def upsert_refund(payment, obj):
    """The Refund row for a Stripe refund, moved forward to Stripe's status (never back)."""
    refund_id = field(obj, "id")
    row = payment.refunds.filter(stripe_refund_id=refund_id).first()
    if row is None:
        try:
            reference = uuid.UUID(metadata(obj, "refund_reference") or "x")
        except ValueError:
            reference = None
        if reference:
            row = payment.refunds.filter(reference=reference, stripe_refund_id="").first()
    status = field(obj, "status", "pending")
    if row is None:  # made outside this API (e.g. the Dashboard): record it too
        return Refund.objects.create(
            payment=payment,
            amount=field(obj, "amount", 0),
            reason=field(obj, "reason", "") or "",
            status=status,
            stripe_refund_id=refund_id,
            failure_reason=field(obj, "failure_reason", "") or "",
        )
    forward = REFUND_RANK.get(status, 0) > REFUND_RANK.get(row.status, 0)
    if forward or not row.stripe_refund_id:
        row.stripe_refund_id = refund_id
        row.status = status
        row.failure_reason = (field(obj, "failure_reason", "") or "")[:64]
        row.save(update_fields=["stripe_refund_id", "status", "failure_reason", "updated_at"])
    return row


def settle_refund_failure(refund, reason, message):
    """Stripe refused a refund request, or has no record of it: failed, unless Stripe
    knows the refund after all (its id on the row)."""
    Refund.objects.filter(pk=refund.pk, stripe_refund_id="").update(
        status=Refund.Status.FAILED, failure_reason=reason[:64], failure_message=message[:500]
    )


def fetch_charge(charge_id):
    """The charge with its complete refund list, from Stripe (GETs: no idempotency key)."""
    charge = stripe.Charge.retrieve(charge_id, expand=["refunds"])
    if charge_refunds(charge) is None:
        # More than Stripe lists inline: page through them all, then re-read the charge,
        # so its amount is at least as new as the list (the version).
        refunds = list(stripe.Refund.list(charge=charge_id, limit=100).auto_paging_iter())
        charge = stripe.Charge.retrieve(charge_id)
        charge = {**charge, "refunds": {"data": refunds, "has_more": False}}
    return charge


def sync_refunds(payment):
    """Set a payment's refund figures from Stripe's current records."""
    if not payment.stripe_charge_id:
        return payment
    return settle_refunds(payment, charge=fetch_charge(payment.stripe_charge_id))
