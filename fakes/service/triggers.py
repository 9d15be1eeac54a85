"""`stripe trigger EVENT`: the API requests that make Stripe emit an event.

As the Stripe CLI's fixtures do (github.com/stripe/stripe-cli, pkg/fixtures), each
trigger is a short list of real API requests, run through the fake Stripe like any
client's (so the events are journaled and forwarded as webhooks); `{name}` in a form
is the id answered by an earlier step of that name. The objects carry
`metadata[triggered_by]=sandbox`, so a backend can tell them from its own (ours
records the event and finds no payment of its own to settle).
"""

import re

METADATA = "metadata[triggered_by]=sandbox"
CHARGE = f"amount=2000&currency=usd&description=(created+by+sandbox+trigger)&{METADATA}"
INTENT = f"amount=2000&currency=usd&{METADATA}"

# event -> [(step name, method, path, form)]
TRIGGERS = {
    "charge.succeeded": [("charge", "POST", "/v1/charges", f"{CHARGE}&source=tok_visa")],
    "charge.failed": [("charge", "POST", "/v1/charges", f"{CHARGE}&source=tok_chargeDeclined")],
    "charge.captured": [
        ("charge", "POST", "/v1/charges", f"{CHARGE}&source=tok_visa&capture=false"),
        ("capture", "POST", "/v1/charges/{charge}/capture", ""),
    ],
    "charge.refunded": [
        ("charge", "POST", "/v1/charges", f"{CHARGE}&source=tok_visa"),
        ("refund", "POST", "/v1/refunds", f"charge={{charge}}&{METADATA}"),
    ],
    "charge.dispute.created": [
        ("charge", "POST", "/v1/charges", f"{CHARGE}&source=tok_createDispute"),
    ],
    "refund.created": [
        ("charge", "POST", "/v1/charges", f"{CHARGE}&source=tok_visa"),
        ("refund", "POST", "/v1/refunds", f"charge={{charge}}&{METADATA}"),
    ],
    "refund.failed": [
        ("charge", "POST", "/v1/charges", f"{CHARGE}&source=tok_refundFail"),
        ("refund", "POST", "/v1/refunds", f"charge={{charge}}&{METADATA}"),
        ("settle", "SETTLE", "", ""),  # what Stripe does later to this card's refund
    ],
    "payment_intent.created": [("intent", "POST", "/v1/payment_intents", INTENT)],
    "payment_intent.succeeded": [
        (
            "intent",
            "POST",
            "/v1/payment_intents",
            f"{INTENT}&payment_method=pm_card_visa&confirm=true",
        ),
    ],
    "payment_intent.payment_failed": [
        (
            "intent",
            "POST",
            "/v1/payment_intents",
            f"{INTENT}&payment_method=pm_card_visa_chargeDeclined&confirm=true",
        ),
    ],
    "payment_intent.requires_action": [
        (
            "intent",
            "POST",
            "/v1/payment_intents",
            f"{INTENT}&payment_method=pm_card_threeDSecure2Required&confirm=true",
        ),
    ],
    "payment_intent.amount_capturable_updated": [
        (
            "intent",
            "POST",
            "/v1/payment_intents",
            f"{INTENT}&payment_method=pm_card_visa&confirm=true&capture_method=manual",
        ),
    ],
    "payment_intent.canceled": [
        ("intent", "POST", "/v1/payment_intents", INTENT),
        ("cancel", "POST", "/v1/payment_intents/{intent}/cancel", ""),
    ],
    "customer.created": [
        ("customer", "POST", "/v1/customers", f"email=trigger%40example.com&{METADATA}")
    ],
    "customer.updated": [
        ("customer", "POST", "/v1/customers", f"email=trigger%40example.com&{METADATA}"),
        ("update", "POST", "/v1/customers/{customer}", "name=Triggered+Customer"),
    ],
    "customer.deleted": [
        ("customer", "POST", "/v1/customers", f"email=trigger%40example.com&{METADATA}"),
        ("delete", "DELETE", "/v1/customers/{customer}", ""),
    ],
    "payment_method.attached": [
        ("customer", "POST", "/v1/customers", f"email=trigger%40example.com&{METADATA}"),
        ("attach", "POST", "/v1/payment_methods/pm_card_visa/attach", "customer={customer}"),
    ],
    "setup_intent.succeeded": [
        (
            "setup",
            "POST",
            "/v1/setup_intents",
            f"payment_method=pm_card_visa&confirm=true&usage=off_session&{METADATA}",
        ),
    ],
}

PLACEHOLDER = re.compile(r"\{(\w+)\}")


def fill(text, ids):
    return PLACEHOLDER.sub(lambda match: ids[match.group(1)], text)
