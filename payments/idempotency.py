"""Client idempotency for the rows written before a provider call (payments, refunds).

A request carrying an `Idempotency-Key` writes its row first, with a keyed hash of its
body and a claim (`locked_until`, CLAIM_SECONDS ahead) while it talks to Stripe. A retry
of the same request is answered from the stored answer once there is one; while the claim
holds it is told to wait (409 + Retry-After); after the claim lapsed it takes the row over
and asks Stripe again with the row's own Stripe idempotency key (so nothing happens twice).

The claim's value is the owner's token: only the request whose `locked_until` is still on
the row releases it and stores the answer (payments.settlement.settle does so in the same
UPDATE as the settlement), so a request that was taken over can never overwrite the
answer its successor stored.
"""

import hashlib
import hmac
import json
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from conventions.errors import ApiError

# How long a request may hold a row while it talks to Stripe (library retries included).
CLAIM_SECONDS = 120
# Stripe keeps idempotency keys for 24 hours; a retry must come well inside that.
STRIPE_IDEMPOTENCY_WINDOW = timedelta(hours=23)


def request_fingerprint(data):
    """A keyed hash of the request body: compares retries without storing card data."""
    canonical = json.dumps(data, sort_keys=True, default=str).encode()
    return hmac.new(settings.SECRET_KEY.encode(), canonical, hashlib.sha256).hexdigest()


def outside_stripe_window(created_at):
    """Stripe forgets idempotency keys after 24 hours: asking again could do it twice."""
    return created_at < timezone.now() - STRIPE_IDEMPOTENCY_WINDOW


def new_claim():
    return timezone.now() + timedelta(seconds=CLAIM_SECONDS)


def resume_request(existing, fingerprint, too_old, noun, reconciliation):
    """A request repeating an Idempotency-Key (a payment or refund row): replay, refuse, or
    take the row over; returns (row, replayed answer or None). A row taken over holds the
    new claim in `locked_until`."""
    if not hmac.compare_digest(existing.request_fingerprint, fingerprint):
        raise ApiError(
            "This Idempotency-Key was already used with a different request body. Use a new "
            f"key for a new {noun}.",
            code="idempotency_key_reused",
            type="idempotency_error",
            status_code=422,
        )
    if existing.response_body is not None:
        return existing, replay_of(existing)
    if too_old:
        message, code = reconciliation
        raise ApiError(message, code=code, type="idempotency_error", status_code=409)
    now, claim = timezone.now(), new_claim()
    claimed = (
        type(existing)
        .objects.filter(pk=existing.pk, response_body__isnull=True)
        .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
        .update(locked_until=claim)
    )
    if not claimed:
        existing.refresh_from_db()
        if existing.response_body is not None:  # answered while we looked
            return existing, replay_of(existing)
        raise ApiError(
            "A request with this Idempotency-Key is still being processed. Retry shortly.",
            code="idempotency_request_in_progress",
            type="idempotency_error",
            status_code=409,
            headers={"Retry-After": "1"},
        )
    existing.refresh_from_db()
    return existing, None


def replay_of(row):
    return row.response_status, row.response_body, {"Idempotent-Replayed": "true"}


def release_claim(row, claim):
    """Let a retry take the row (no final answer to store), if this request still owns it."""
    type(row).objects.filter(pk=row.pk, locked_until=claim).update(locked_until=None)


def store_answer(row, claim, status, body, final):
    """Release the claim and, when final, store the answer a retry replays: only if this
    request still owns the row. Returns True if it did."""
    updates = {"locked_until": None}
    if final:
        updates.update(response_status=status, response_body=body)
    rows = type(row).objects.filter(pk=row.pk, locked_until=claim, response_body__isnull=True)
    return bool(rows.update(**updates))


def is_replay(rows, fingerprint):
    """Would a request be answered from a stored answer among `rows` (no Stripe call)?"""
    return rows.filter(request_fingerprint=fingerprint, response_body__isnull=False).exists()
