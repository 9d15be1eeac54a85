"""The fakes' pytest plugin as any suite uses it (docs/testing-harness.md, "The pytest
plugin"): no Django, no settings, only the fixtures the installed plugin provides.

Run under pytest by test_pytest_style.py (in a subprocess, in a folder of its own).
"""

# --8<-- [start:plugin]
import requests
import stripe

from fakes.pushwoosh import FAKE_APPLICATION, FAKE_AUTH, FAKE_PUSH_URL
from fakes.stripe import stripe_server


def test_pay(fakes_stripe):
    stripe.PaymentIntent.create(
        amount=500, currency="usd", payment_method="pm_card_visa", confirm=True
    )
    assert fakes_stripe.charges[0]["amount"] == 500


def test_push(fakes_session, fakes_pushwoosh):
    request = {"application": FAKE_APPLICATION, "auth": FAKE_AUTH,
               "notifications": [{"content": "hello", "conditions": [["UserID", "EQ", 7]]}]}  # fmt: skip
    fakes_session.post(FAKE_PUSH_URL + "createMessage", json={"request": request}, timeout=5)
    assert fakes_pushwoosh.received_by(7) == ["hello"]


def test_over_http(fakes_server):
    with stripe_server(fakes_server.url + "/stripe"):
        stripe.Charge.create(amount=700, currency="usd", source="tok_visa")
    assert fakes_server.mounts["/stripe"].charges[0]["amount"] == 700
    assert requests.get(fakes_server.url + "/todos-api/todos/1", timeout=5).json()["id"] == 1


# --8<-- [end:plugin]
