"""The fake Stripe checked against the stripe library's own declarations, and across layers."""

import typing
from unittest import mock

import stripe
from django.test import SimpleTestCase

from backend.fakeservices import start_fake_services
from fakes.stripe import cards
from payments.testing import (
    FakeStripe,
    MockCharge,
    MockToken,
    fake_stripe,
    signed_webhook,
    stripe_server,
)

NESTED = {"Card": stripe.Card}


def declared_fields(cls):
    """{field: (optional?, annotation)} from the class annotations stripe 16 ships."""
    fields = {}
    for name, annotation in vars(cls).get("__annotations__", {}).items():
        if typing.get_origin(annotation) is typing.ClassVar or name.startswith("_"):
            continue
        args = typing.get_args(annotation)
        optional = typing.get_origin(annotation) is typing.Union and type(None) in args
        fields[name] = (optional, annotation)
    return fields


def resolve(annotation, value):
    """The StripeObject class a nested value is declared as, if one can be told."""
    candidates = []
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, typing.ForwardRef):
            arg = getattr(stripe, arg.__forward_arg__, None)
        if (
            isinstance(arg, type)
            and issubclass(arg, stripe.StripeObject)
            and arg is not stripe.StripeObject
        ):
            candidates.append(arg)
    if len(candidates) > 1 and isinstance(value, dict):
        candidates = [
            c for c in candidates if getattr(c, "OBJECT_NAME", None) == value.get("object")
        ]
    return candidates[0] if len(candidates) == 1 else None


class ShapeTests(SimpleTestCase):
    def assertShape(self, obj, cls, path):
        fields = declared_fields(cls)
        undeclared = set(obj) - set(fields)
        self.assertFalse(
            undeclared, f"{path}: fields {cls.__qualname__} does not declare: {sorted(undeclared)}"
        )
        missing = {name for name, (optional, _) in fields.items() if not optional} - set(obj)
        self.assertFalse(missing, f"{path}: required fields missing: {sorted(missing)}")
        for name, value in obj.items():
            nested = resolve(fields[name][1], value)
            if nested is not None and isinstance(value, dict) and nested is not stripe.ListObject:
                self.assertShape(value, nested, f"{path}.{name}")

    def every_object(self):
        engine = FakeStripe()
        with fake_stripe(engine):
            token = stripe.Token.create(
                card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
            )
            charge = stripe.Charge.create(amount=1000, currency="usd", source=token.id)
            stripe.Refund.create(charge=charge.id, amount=100)
            with self.assertRaises(stripe.CardError):
                stripe.Charge.create(
                    amount=1000, currency="usd", source="tok_chargeDeclinedFraudulent"
                )
            stripe.PaymentIntent.create(
                amount=1000, currency="usd", payment_method="pm_card_visa", confirm=True
            )
            stripe.PaymentIntent.create(
                amount=1000,
                currency="usd",
                payment_method="pm_card_threeDSecure2Required",
                confirm=True,
            )
            with self.assertRaises(stripe.CardError):
                stripe.PaymentIntent.create(
                    amount=1000,
                    currency="usd",
                    payment_method="pm_card_visa_chargeDeclined",
                    confirm=True,
                )
            stripe.Customer.create(email="a@example.com", source="tok_visa")
        return engine

    def test_every_object_matches_the_stripe_library_declarations(self):
        engine = self.every_object()
        classes = {"token": stripe.Token, "card": stripe.Card, "charge": stripe.Charge, "refund": stripe.Refund,
                   "payment_method": stripe.PaymentMethod, "payment_intent": stripe.PaymentIntent,
                   "customer": stripe.Customer, "event": stripe.Event}  # fmt: skip
        seen = set()
        for obj in map(engine.get, list(engine.objects)):
            self.assertShape(obj, classes[obj["object"]], obj["id"])
            seen.add(obj["object"])
            if obj["object"] == "event":
                inner = obj["data"]["object"]
                self.assertShape(inner, classes[inner["object"]], f"{obj['id']}.data.object")
        self.assertEqual(seen, set(classes))

    def test_ids_prefixes_and_livemode(self):
        engine = self.every_object()
        prefixes = {"token": "tok_", "charge": "ch_", "refund": "re_", "payment_method": "pm_",
                    "payment_intent": "pi_", "customer": "cus_", "event": "evt_", "card": "card_"}  # fmt: skip
        for obj in map(engine.get, list(engine.objects)):
            self.assertTrue(obj["id"].startswith(prefixes[obj["object"]]), obj["id"])
            if "livemode" in obj:
                self.assertIs(obj["livemode"], False)

    def test_the_checker_itself_catches_drift(self):
        with self.assertRaises(AssertionError):
            self.assertShape({"id": "ch_1", "object": "charge", "invented": 1}, stripe.Charge, "x")
        with self.assertRaises(AssertionError):
            self.assertShape({"id": "tok_1", "object": "token"}, stripe.Token, "x")


def charge_pair(number):
    """Token + charge through whatever stripe.Token/stripe.Charge currently are."""
    try:
        token = stripe.Token.create(
            card={"number": number, "exp_month": 12, "exp_year": 2035, "cvc": "123"}
        )
        charge = stripe.Charge.create(
            amount=2000, currency="usd", source=token.id, idempotency_key=f"k-{number}"
        )
        return ("succeeded", charge.status, charge.payment_method_details.card.last4)
    except stripe.CardError as error:
        return (type(error).__name__, error.code, error.error.decline_code)
    except stripe.StripeError as error:
        return (type(error).__name__, error.code, None)


class ThreeLayerTableTests(SimpleTestCase):
    """Every test card, through all three layers, with identical outcomes."""

    NUMBERS = [*cards.CARDS, "4242424242424241", "1111111111111111", "4111111111111111", "42424242"]

    def outcomes_in_process(self):
        with fake_stripe():
            return {n: charge_pair(n) for n in self.NUMBERS}

    def outcomes_mock_classes(self):
        with (
            fake_stripe(),
            mock.patch("stripe.Token", MockToken),
            mock.patch("stripe.Charge", MockCharge),
        ):
            return {n: charge_pair(n) for n in self.NUMBERS}

    def outcomes_server(self):
        engine = FakeStripe()
        server = start_fake_services({"/stripe": engine})
        self.addCleanup(server.stop)
        with stripe_server(server.url + "/stripe", api_key="sk_test_server"):
            return {n: charge_pair(n) for n in self.NUMBERS}

    def test_all_layers_agree_and_match_stripes_published_outcomes(self):
        in_process = self.outcomes_in_process()
        self.assertEqual(self.outcomes_mock_classes(), in_process)
        self.assertEqual(self.outcomes_server(), in_process)
        expected = {
            "4242424242424242": ("succeeded", "succeeded", "4242"),
            "4000000000000002": ("CardError", "card_declined", "generic_decline"),
            "4000000000009995": ("CardError", "card_declined", "insufficient_funds"),
            "4000000000009987": ("CardError", "card_declined", "lost_card"),
            "4000000000009979": ("CardError", "card_declined", "stolen_card"),
            "4100000000000019": ("CardError", "card_declined", "fraudulent"),
            "4000000000000069": ("CardError", "expired_card", "expired_card"),
            "4000000000000127": ("CardError", "incorrect_cvc", "incorrect_cvc"),
            "4000000000000119": ("CardError", "processing_error", "processing_error"),
            "4000000000000341": ("CardError", "card_declined", "generic_decline"),
            "4000000000003220": ("CardError", "card_declined", "authentication_required"),
            "4242424242424241": ("CardError", "incorrect_number", None),
            "1111111111111111": ("CardError", "incorrect_number", None),
            "4111111111111111": ("CardError", "card_declined", "test_mode_live_card"),
            "42424242": ("CardError", "invalid_number", None),
            "5555555555554444": ("succeeded", "succeeded", "4444"),
            "378282246310005": ("succeeded", "succeeded", "0005"),
        }
        for number, outcome in expected.items():
            self.assertEqual(in_process[number], outcome, number)


class EngineBehaviourTests(SimpleTestCase):
    def setUp(self):
        self.engine = self.enterContext(fake_stripe())

    def test_card_errors_are_402_card_error_with_charge(self):
        with self.assertRaises(stripe.CardError) as caught:
            stripe.Charge.create(amount=500, currency="usd", source="tok_chargeDeclinedExpiredCard")
        error = caught.exception
        self.assertEqual(
            (error.http_status, error.error.type, error.param), (402, "card_error", "exp_month")
        )
        self.assertEqual(self.engine.get(error.error.charge)["status"], "failed")
        self.assertEqual(self.engine.events[-1]["type"], "charge.failed")

    def test_invalid_requests(self):
        cases = [
            (lambda: stripe.Charge.create(currency="usd", source="tok_visa"), "parameter_missing", "amount"),
            (lambda: stripe.Charge.create(amount=10, currency="usd", source="tok_visa"), "amount_too_small", "amount"),
            (lambda: stripe.Charge.create(amount=500, currency="usd", source="tok_visa", bogus=1), "parameter_unknown", "bogus"),
            (lambda: stripe.Charge.retrieve("ch_missing"), "resource_missing", "id"),
            (lambda: stripe.Token.create(card={"number": "4242424242424242", "exp_month": 13, "exp_year": 2035}), "invalid_expiry_month", "exp_month"),
            (lambda: stripe.Token.create(card={"number": "4242424242424242", "exp_month": 1, "exp_year": 2001}), "invalid_expiry_year", "exp_year"),
            (lambda: stripe.Token.create(card={"number": "4242424242424242", "exp_month": 1, "exp_year": 2035, "cvc": "1"}), "invalid_cvc", "cvc"),
        ]  # fmt: skip
        for call, code, param in cases:
            with self.assertRaises(stripe.StripeError) as caught:
                call()
            self.assertEqual((caught.exception.code, caught.exception.param), (code, param))
        self.assertEqual(self.engine.charges, [])

    def test_api_keys(self):
        for key, code in (("sk_live_abc", "api_key_live_mode"), ("not-a-key", "api_key_invalid")):
            with self.assertRaises(stripe.AuthenticationError) as caught:
                stripe.Charge.create(amount=500, currency="usd", source="tok_visa", api_key=key)
            self.assertEqual(caught.exception.json_body["error"]["code"], code)

    def test_tokens_are_single_use_and_lists_paginate(self):
        token = stripe.Token.create(
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2035}
        )
        stripe.Charge.create(amount=500, currency="usd", source=token.id)
        with self.assertRaises(stripe.InvalidRequestError) as caught:
            stripe.Charge.create(amount=500, currency="usd", source=token.id)
        self.assertEqual(caught.exception.code, "token_already_used")
        for amount in (600, 700):
            stripe.Charge.create(amount=amount, currency="usd", source="tok_visa")
        page = stripe.Charge.list(limit=2)
        self.assertEqual([c.amount for c in page.data], [700, 600])
        self.assertTrue(page.has_more)
        self.assertEqual(
            [c.amount for c in stripe.Charge.list(limit=2, starting_after=page.data[-1].id).data],
            [500],
        )

    def test_capture_and_over_refund(self):
        charge = stripe.Charge.create(amount=1000, currency="usd", source="tok_visa", capture=False)
        self.assertFalse(charge.captured)
        charge = stripe.Charge.capture(charge.id)
        self.assertTrue(charge.captured)
        with self.assertRaises(stripe.InvalidRequestError) as caught:
            stripe.Refund.create(charge=charge.id, amount=1001)
        self.assertEqual(caught.exception.code, "amount_too_large")

    def test_payment_intent_cancel_and_customer_attach(self):
        intent = stripe.PaymentIntent.create(amount=1000, currency="usd")
        self.assertEqual(intent.status, "requires_payment_method")
        self.assertEqual(stripe.PaymentIntent.cancel(intent.id).status, "canceled")
        customer = stripe.Customer.create(source="tok_chargeCustomerFail")
        self.assertTrue(customer.default_source.startswith("card_"))
        with self.assertRaises(stripe.CardError):
            stripe.Charge.create(amount=500, currency="usd", customer=customer.id)

    def test_webhooks_are_signed_as_stripe_signs_them(self):
        stripe.Charge.create(amount=500, currency="usd", source="tok_visa")
        event = self.engine.events[-1]
        body, header = signed_webhook(event, "whsec_abc")
        parsed = stripe.Webhook.construct_event(body, header, "whsec_abc")
        self.assertEqual((parsed.id, parsed.type), (event["id"], "charge.succeeded"))
        with self.assertRaises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, header, "whsec_other")

    def test_server_unknown_path_is_404_and_wrong_method_405_in_stripes_shape(self):
        import requests

        server = start_fake_services({"/stripe": FakeStripe()})
        self.addCleanup(server.stop)
        auth = {"Authorization": "Bearer sk_test_x"}
        missing = requests.get(server.url + "/stripe/v1/nothing", headers=auth, timeout=5)
        wrong = requests.delete(server.url + "/stripe/v1/charges", headers=auth, timeout=5)
        self.assertEqual((missing.status_code, wrong.status_code), (404, 405))
        self.assertEqual(missing.json()["error"]["type"], "invalid_request_error")
        self.assertEqual(wrong.json()["error"]["type"], "invalid_request_error")


class IdempotencyFidelityTests(SimpleTestCase):
    def setUp(self):
        self.engine = self.enterContext(fake_stripe())

    def test_a_replay_is_the_original_answer_not_the_current_state(self):
        charge = stripe.Charge.create(
            amount=900, currency="usd", source="tok_visa", idempotency_key="k1"
        )
        stripe.Refund.create(charge=charge.id)
        replay = stripe.Charge.create(
            amount=900, currency="usd", source="tok_visa", idempotency_key="k1"
        )
        self.assertEqual(replay.last_response.headers["Idempotent-Replayed"], "true")
        self.assertEqual(
            (replay.id, replay.amount_refunded, replay.refunded), (charge.id, 0, False)
        )
        self.assertEqual(len(self.engine.charges), 1)

    def test_a_replayed_card_error_is_the_same_error(self):
        errors = []
        for _ in range(2):
            with self.assertRaises(stripe.CardError) as caught:
                stripe.Charge.create(
                    amount=900, currency="usd", source="tok_chargeDeclined", idempotency_key="k2"
                )
            errors.append(caught.exception.json_body)
        self.assertEqual(errors[0], errors[1])
        self.assertEqual(len(self.engine.charges), 1)

    def test_a_validation_error_does_not_burn_the_key(self):
        with self.assertRaises(stripe.InvalidRequestError):
            stripe.Charge.create(amount=10, currency="usd", source="tok_visa", idempotency_key="k3")
        charge = stripe.Charge.create(
            amount=900, currency="usd", source="tok_visa", idempotency_key="k3"
        )
        self.assertEqual(charge.status, "succeeded")

    def test_same_key_different_parameters_is_an_idempotency_error(self):
        stripe.Charge.create(amount=900, currency="usd", source="tok_visa", idempotency_key="k4")
        with self.assertRaises(stripe.IdempotencyError) as caught:
            stripe.Charge.create(
                amount=901, currency="usd", source="tok_visa", idempotency_key="k4"
            )
        self.assertEqual(caught.exception.http_status, 400)
        self.assertEqual(caught.exception.json_body["error"]["type"], "idempotency_error")
