"""Reconciliation: settle what was left pending (a crash, a timeout, an outage, a refund
Stripe is still processing) from Stripe's own records. For cron, via `reconcile_payments`."""

from datetime import timedelta

import stripe
from django.db.models import Q
from django.utils import timezone

from payments import settlement
from payments.models import Payment, Refund
from payments.stripe_objects import field, metadata


def reconcile_pending(older_than=timedelta(minutes=5), report=print):
    """Settle payments left pending, unless a request still holds them."""
    now = timezone.now()
    pending = Payment.objects.filter(status=Payment.Status.PENDING, created_at__lt=now - older_than)
    pending = pending.filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    settled = failed = errors = 0
    for payment in pending.order_by("created_at"):
        try:
            found = find_in_stripe(payment)
        except stripe.StripeError as error:
            errors += 1
            report(
                f"payment {payment.pk}: Stripe unavailable ({type(error).__name__}); kept pending"
            )
            continue
        if found is None:
            message = "Stripe has no charge for this payment."
            payment = settlement.settle_failure(payment, "not_charged", "", message)[0]
            failed += 1
        elif field(found, "object") == "payment_intent":
            payment = settlement.settle_intent(payment, found)[0]
            settled += 1
        else:
            payment = settlement.settle_charge(payment, found)[0]
            settled += 1
        if payment.status in settlement.PAID:  # refunded at Stripe meanwhile? record those too
            try:
                payment = settlement.sync_refunds(payment)
            except stripe.StripeError:
                report(f"payment {payment.pk}: refunds not fetched; their webhooks will bring them")
        report(f"payment {payment.pk}: {payment.status}")
    return {"settled": settled, "failed": failed, "errors": errors}


def reconcile_refunds(older_than=timedelta(minutes=5), report=print):
    """Settle refunds left pending (lost answer, crash, outage, Stripe still processing)."""
    now = timezone.now()
    pending = Refund.objects.filter(
        status__in=settlement.UNSETTLED_REFUNDS, created_at__lt=now - older_than
    ).filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
    settled = failed = errors = 0
    for refund in pending.select_related("payment").order_by("created_at"):
        payment = refund.payment
        try:
            if refund.stripe_refund_id:
                found = stripe.Refund.retrieve(refund.stripe_refund_id)
            else:
                found = find_refund_in_stripe(refund)
            if found is not None:
                settlement.settle_refunds(payment, [found])
                settlement.sync_refunds(payment)
        except stripe.StripeError as error:
            errors += 1
            report(f"refund {refund.pk}: Stripe unavailable ({type(error).__name__}); kept pending")
            continue
        if found is None:
            settlement.settle_refund_failure(
                refund, "not_refunded", "Stripe has no refund for this request."
            )
            failed += 1
        else:
            settled += 1
        refund.refresh_from_db()
        report(f"refund {refund.pk}: {refund.status}")
    return {"settled": settled, "failed": failed, "errors": errors}


def find_refund_in_stripe(refund):
    """The Stripe refund made for this row (matched by our reference), or None."""
    listing = stripe.Refund.list(charge=refund.payment.stripe_charge_id, limit=100)
    for obj in listing.auto_paging_iter():
        if metadata(obj, "refund_reference") == str(refund.reference):
            return obj
    return None


def find_in_stripe(payment):
    """The charge or PaymentIntent Stripe made for this payment, or None."""
    if payment.stripe_payment_intent_id:
        return stripe.PaymentIntent.retrieve(payment.stripe_payment_intent_id)
    if payment.stripe_charge_id:
        return stripe.Charge.retrieve(payment.stripe_charge_id)
    since = int((payment.created_at - timedelta(minutes=5)).timestamp())
    intents = (Payment.Method.PAYMENT_METHOD, Payment.Method.PAYMENT_SHEET)
    resource = stripe.PaymentIntent if payment.method in intents else stripe.Charge
    for obj in resource.list(created={"gte": since}, limit=100).auto_paging_iter():
        if metadata(obj, "payment_id") == str(payment.pk):
            return obj
    return None
