"""Stripe's events delivered to this backend's webhook endpoint through a test client."""

from django.urls import reverse

from fakes.stripe.client import signed_webhook


def post_signed_event(client, event, secret, timestamp=None):
    """POST `event` to /api/stripe/webhook/, signed with `secret` as Stripe signs it, through
    a Django or DRF test client; the response (the caller asserts what it expects)."""
    body, header = signed_webhook(event, secret, timestamp)
    return client.generic(
        "POST", reverse("stripe-webhook"), body, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )  # fmt: skip
