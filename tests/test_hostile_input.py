"""Hostile input: every case is a 4xx in the envelope and leaves the database as it was.

Two halves: the cases from issue 10's "Why", one test each, and hypothesis
property tests throwing a hostile corpus (deep nesting, Unicode digits, lone
surrogates, huge integers, wrong top-level types, oversized fields, invalid
UTF-8) at every write endpoint and at the webhook with a valid signature.

The property tests run HOSTILE_EXAMPLES examples each (10; 300 with SLOW_TESTS=1, as
in CI), derandomized so every run tries the same ones.
"""

import hashlib
import hmac
import json
import os
import time
import uuid
from unittest import mock

import stripe
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient, APITestCase

from conventions.inputs import json_depth, loads_strict
from notifications.models import Device, NotificationLog
from notifications.testing import FakeNotificationServicesMixin
from payments.models import Payment, StripeEvent
from payments.testing import FakeStripeMixin, sign_webhook

User = get_user_model()
SECRET = "whsec_hostile"
DEPTH = 32  # settings.API_MAX_JSON_DEPTH's default
SLOW = os.environ.get("SLOW_TESTS", "").lower() in ("1", "true", "yes")
HOSTILE_EXAMPLES = 300 if SLOW else 10
hostile_settings = settings(
    max_examples=HOSTILE_EXAMPLES,
    deadline=None,
    database=None,  # no .hypothesis/ directory; failures print their example
    derandomize=True,  # the same examples on every run: CI fails only on a real change
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
GENEROUS_RATES = {
    "PAYMENTS_THROTTLE": "100000/hour",
    "API_THROTTLE_USER": "100000/min",
    "API_THROTTLE_AUTH": "100000/min",
    "API_THROTTLE_ANON": "100000/min",
}
VALID_CARD = {
    "number": "4242424242424242",
    "exp_month": 12,
    "exp_year": 2034,
    "cvc": "123",
    "amount": 500,
    "currency": "usd",
}


# ------------------------------------------------------------------ the corpus
# Each strategy yields JSON *text* for one value: some hostile values (deep nesting,
# lone surrogates, 5000-digit integers) cannot be built as Python objects and dumped.
def nested(depth, kind):
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


deep = st.builds(nested, st.integers(DEPTH + 1, 3000), st.sampled_from(["array", "object"]))
# Unicode digits that are not 0-9: str.isdigit() and int() accept many of them.
non_ascii_digit = st.characters(categories=["Nd", "No"], exclude_characters="0123456789")
unicode_digits = st.text(non_ascii_digit, min_size=1, max_size=19).map(json.dumps)
# A card-like number with one foreign digit in it, e.g. "424242424242424²".
one_foreign_digit = st.builds(
    lambda digits, foreign, at: json.dumps(digits[:at] + foreign + digits[at:]),
    st.text("0123456789", min_size=11, max_size=18),
    non_ascii_digit,
    st.integers(0, 18),
)
lone_surrogate = st.builds(
    lambda prefix, code: json.dumps(prefix)[:-1] + f'\\u{code:04x}"',
    st.text("abc123", max_size=5),
    st.integers(0xD800, 0xDFFF),
)
huge_int = st.one_of(
    st.integers(min_value=2**31).map(str),
    st.integers(max_value=-1).map(str),
    st.sampled_from([str(2**63), str(2**64), str(-(2**63) - 1), "9" * 4301, "1e400"]),
)
not_json = st.sampled_from(["NaN", "Infinity", "-Infinity"])
wrong_type = st.sampled_from(["null", "true", "false", "[]", "{}", "[1]", "1.5", "0"])
oversized = st.integers(600, 20_000).map(lambda n: json.dumps("9" * n))
any_string = st.sampled_from(['"x"', '""', '"  "', '"\\u0000"'])

FULL_CORPUS = st.one_of(
    deep,
    unicode_digits,
    one_foreign_digit,
    lone_surrogate,
    huge_int,
    not_json,
    wrong_type,
    oversized,
    any_string,
)
# For a field where some strings are legitimate (a push token, a username): only what
# no string field may accept.
STRUCTURAL = st.one_of(deep, lone_surrogate, not_json, oversized)
# Whole bodies: top-level types that are not objects, nesting, invalid text.
top_level = st.one_of(
    deep,
    st.sampled_from(["[]", "null", "1", '"x"', "true", "[{}]", "1e400", "NaN"]),
    lone_surrogate,
)
invalid_utf8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe2\x82", b"\x80abc"])


def with_field(base, name, value_text):
    """The JSON text of `base` with `name` set to the raw JSON text `value_text`."""
    body = json.dumps({**base, name: "@@HOSTILE@@"})
    return body.replace('"@@HOSTILE@@"', value_text)


class HostileCase(HypothesisTestCase):
    """Helpers: a snapshot of every row, and the assertion each hostile request must pass.

    hypothesis' Django TestCase runs each example in its own transaction, rolled back;
    its @given tests skip Django's per-test setup, so rows the examples need come from
    setUpTestData (created once in the class's transaction) and setUp makes the client.
    """

    client_class = APIClient

    def setUp(self):
        super().setUp()
        self.client = self.client_class()

    models = (User, Token, Payment, StripeEvent, Device, NotificationLog)

    def snapshot(self):
        return {
            model.__name__: list(model.objects.order_by("pk").values_list())
            for model in self.models
        }

    def post_text(self, url, text, **headers):
        body = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        return self.client.generic("POST", url, body, content_type="application/json", **headers)

    def assertRefused(self, response, codes=None):
        self.assertTrue(400 <= response.status_code < 500, (response.status_code, response.content))
        error = response.json()["error"]
        self.assertEqual(
            set(error) - {"decline_code", "payment"}, {"type", "code", "message", "param", "fields"}
        )
        if codes is not None:
            self.assertIn(error["code"], codes, error)
        return error

    def assertRefusedUnchanged(self, send, codes=None):
        before = self.snapshot()
        error = self.assertRefused(send(), codes)
        self.assertEqual(self.snapshot(), before, "a refused request changed the database")
        return error


# --------------------------------------------------------------- the parser itself
class ParserUnitTests(APITestCase):
    def test_depth_is_counted_without_recursion_and_ignores_strings(self):
        self.assertEqual(json_depth('{"a": [1, {"b": "[[[[{{"}]}'), 3)
        self.assertEqual(json_depth('"\\"[[["'), 0)
        self.assertEqual(json_depth("[" * 200_000), 200_000)  # no RecursionError

    def test_depth_check_is_linear_on_adversarial_strings(self):
        # A pattern that must find each string's closing quote retries from every quote:
        # '"\\' * 32000 took 6 s that way. Linear scanning takes milliseconds.
        for text in ('"\\' * 32_000, '"\\"' * 21_000, '["' * 32_000):
            started = time.perf_counter()
            json_depth(text)
            self.assertLess(time.perf_counter() - started, 1.0, text[:8])
        started = time.perf_counter()
        response = self.client.generic(
            "POST", reverse("register"), '"\\' * 30_000, content_type="application/json"
        )
        self.assertEqual(response.json()["error"]["code"], "parse_error")
        self.assertLess(time.perf_counter() - started, 2.0)

    def test_loads_strict_refuses_what_cannot_be_stored(self):
        for text in ("[" * 33 + "]" * 33, '"\\ud800"', '{"\\udfff": 1}', "NaN", "9" * 5000):
            with self.subTest(text=text[:20]), self.assertRaises(ValueError):
                loads_strict(text)
        self.assertEqual(loads_strict('["\\ud83d\\ude00"]'), ["\U0001f600"])  # a proper pair
        self.assertIsInstance(loads_strict("[" * 32 + "]" * 32, max_depth=32), list)

    @override_settings(API_MAX_JSON_DEPTH=3)
    def test_the_depth_is_a_setting(self):
        url = reverse("register")
        ok = self.client.generic(
            "POST", url, '{"username": [[1]]}', content_type="application/json"
        )
        self.assertEqual(ok.json()["error"]["code"], "validation_error")
        deep = self.client.generic(
            "POST", url, '{"username": [[[1]]]}', content_type="application/json"
        )
        self.assertEqual(deep.json()["error"]["code"], "parse_error")


# ----------------------------------------------------------- the issue's "Why" list
@override_settings(STRIPE_WEBHOOK_SECRET=SECRET, **GENEROUS_RATES)
class IssueCasesTests(FakeStripeMixin, FakeNotificationServicesMixin, HostileCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("mallory", password="correct-horse-battery-42")
        self.client.force_authenticate(self.user)
        self.paid = Payment.objects.create(
            owner=self.user, amount=1000, currency="usd", method="token", status="succeeded",
            stripe_charge_id="ch_hostile",
        )  # fmt: skip

    def test_deep_nesting_is_a_parse_error_everywhere(self):
        body = '{"username": ' + "[" * 1000 + "]" * 1000 + "}"
        self.client.force_authenticate(None)
        for name in ("register", "token"):
            with self.subTest(name):
                error = self.assertRefusedUnchanged(
                    lambda name=name: self.post_text(reverse(name), body)
                )
                self.assertEqual(error["code"], "parse_error")
                self.assertIn("32", error["message"])
        self.client.force_authenticate(self.user)
        for name in ("payments", "devices"):
            with self.subTest(name):
                self.assertRefusedUnchanged(
                    lambda name=name: self.post_text(reverse(name), body), {"parse_error"}
                )

    def test_unicode_digits_never_reach_stripe(self):
        cases = {
            "number": ["424242424242424\u00b2", "\uff14" * 16, "\u0664\u0662" * 8],
            "cvc": ["\u0661\u0662\u0663"],
            "amount": ["\u0665\u0660\u0660", "500"],
            "exp_month": ["\u0661\u0662", "12"],
            "exp_year": ["\uff12\uff10\uff13\uff14"],
        }
        for name, values in cases.items():
            for value in values:
                with self.subTest(name=name, value=value):
                    body = {**VALID_CARD, name: value}
                    error = self.assertRefusedUnchanged(
                        lambda body=body: self.client.post(
                            reverse("payments"), body, format="json"
                        ),
                        {"validation_error"},
                    )
                    self.assertEqual(error["param"], name)
                    self.assertNotIn(value, json.dumps(error, ensure_ascii=False))
        self.assertEqual(self.stripe.requests, [])

    def test_ascii_card_with_spaces_still_pays(self):
        body = {**VALID_CARD, "number": "4242 4242 4242 4242"}
        response = self.client.post(reverse("payments"), body, format="json")
        self.assertEqual(response.status_code, 201, response.content)

    def test_lone_surrogate_in_a_choice_field_is_a_400(self):
        staff = User.objects.create_user("staff", is_staff=True)
        for url, body, user in (
            (reverse("devices"), '{"platform": "\\ud800", "push_token": "t"}', self.user),
            (reverse("payment-refund", args=[self.paid.pk]), '{"reason": "\\ud800"}', staff),
        ):
            self.client.force_authenticate(user)
            with self.subTest(url):
                self.assertRefusedUnchanged(
                    lambda url=url, body=body: self.post_text(url, body), {"parse_error"}
                )

    def test_an_invalid_choice_is_not_echoed(self):
        response = self.client.post(
            reverse("devices"), {"platform": "<script>", "push_token": "t"}, format="json"
        )
        error = self.assertRefused(response, {"validation_error"})
        self.assertNotIn("<script>", json.dumps(error))
        self.assertEqual(error["fields"]["platform"][0]["code"], "invalid_choice")

    def test_push_token_must_be_a_string(self):
        for token in (0, 12345, True, ["t"], {"t": 1}):
            with self.subTest(token=token):
                self.assertRefusedUnchanged(
                    lambda token=token: self.client.post(
                        reverse("devices"), {"platform": "ios", "push_token": token}, format="json"
                    ),
                    {"validation_error"},
                )

    def test_invalid_utf8_is_a_parse_error(self):
        for raw in (b'{"username": "\xff"}', b'{"platform": "\xed\xa0\x80"}'):
            with self.subTest(raw=raw):
                self.assertRefusedUnchanged(
                    lambda raw=raw: self.post_text(reverse("devices"), raw), {"parse_error"}
                )

    def test_idempotency_key_is_printable_ascii_up_to_255(self):
        for key in ("caf\u00e9-1", "tab\there", "\u0661", "x" * 256):
            with self.subTest(key=key):
                error = self.assertRefusedUnchanged(
                    lambda key=key: self.client.post(
                        reverse("payments"), VALID_CARD, format="json", HTTP_IDEMPOTENCY_KEY=key
                    ),
                    {"invalid_idempotency_key"},
                )
                self.assertEqual(error["param"], "Idempotency-Key")
        response = self.client.post(
            reverse("payments"),
            VALID_CARD,
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-1 ~!" + "x" * 245,
        )
        self.assertEqual(response.status_code, 201, response.content)

    def test_pagination_parameters(self):
        url = reverse("payments")
        for query in ("page=0", "page=-1", "page=abc", "page=\u0661", "page_size=null",
                      "page_size=0", "page_size=101", "page_size=\uff15", "page=2147483648"):  # fmt: skip
            with self.subTest(query):
                self.assertRefused(self.client.get(f"{url}?{query}"), {"validation_error"})
        self.assertRefused(self.client.get(f"{url}?page=2"), {"not_found"})
        page = self.client.get(f"{url}?page=1&page_size=100")
        self.assertEqual((page.status_code, page.json()["count"]), (200, 1))

    @override_settings(DEBUG=True)
    def test_unknown_api_urls_are_json_404s_in_debug_too(self):
        for method, url in (("get", "/api/payments/null,null/"), ("post", "/api/nope/")):
            with self.subTest(url):
                response = getattr(self.client, method)(url)
                self.assertEqual(response["Content-Type"], "application/json")
                self.assertRefused(response, {"not_found"})

    def test_unknown_ids_are_404_in_the_envelope(self):
        for url in (reverse("payment-detail", args=[999]), f"/api/devices/{2**70}/"):
            with self.subTest(url):
                method = self.client.get if "payments" in url else self.client.delete
                self.assertRefused(method(url), {"not_found"})


# ----------------------------------------------------------------------- webhooks
def stripe_event(**overrides):
    event = {
        "id": "evt_hostile_1",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {
            "object": {
                "id": "ch_hostile",
                "object": "charge",
                "amount": 1000,
                "amount_refunded": 400,
                "metadata": {},
            }
        },
    }
    event.update(overrides)
    return event


def sign_bytes(payload, secret):
    """Stripe's scheme over raw bytes (even ones that are not UTF-8): t=..,v1=HMAC(t.payload).

    https://docs.stripe.com/webhooks#verify-manually
    """
    timestamp = int(time.time())
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@override_settings(STRIPE_WEBHOOK_SECRET=SECRET)
class WebhookHostileTests(FakeStripeMixin, HostileCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = User.objects.create_user("hooked")
        cls.paid = Payment.objects.create(
            owner=cls.user, amount=1000, currency="usd", method="token", status="succeeded",
            stripe_charge_id="ch_hostile",
        )  # fmt: skip

    def deliver_text(self, text):
        payload = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
        return self.client.generic(
            "POST", reverse("stripe-webhook"), payload, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_bytes(payload, SECRET),
        )  # fmt: skip

    def charge_with(self, **fields):
        obj = {**stripe_event()["data"]["object"], **fields}
        return json.dumps(stripe_event(data={"object": obj}))

    def test_a_good_event_still_applies_and_a_replay_is_a_duplicate(self):
        charge = stripe.Charge.create(amount=1000, currency="usd", source="tok_visa")
        stripe.Refund.create(charge=charge.id, amount=400)
        Payment.objects.filter(pk=self.paid.pk).update(stripe_charge_id=charge.id)
        good = stripe_event()
        good["data"]["object"]["id"] = charge.id
        first = self.deliver_text(json.dumps(good))
        self.assertEqual(first.json(), {"received": True, "duplicate": False})
        self.paid.refresh_from_db()
        self.assertEqual((self.paid.status, self.paid.amount_refunded), ("partially_refunded", 400))
        again = self.deliver_text(json.dumps(good))
        self.assertEqual(again.json(), {"received": True, "duplicate": True})

    def test_an_event_about_an_object_stripe_does_not_have_is_a_4xx(self):
        response = self.deliver_text(json.dumps(stripe_event()))  # ch_hostile: not in Stripe
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.json()["error"]["code"], "event_object_unknown")
        self.assertEqual(StripeEvent.objects.count(), 0)

    def test_signed_odd_content_is_invalid_payload(self):
        two_to_63 = str(2**63)
        cases = {
            "top-level array": "[]",
            "top-level null": "null",
            "top-level number": "1",
            "top-level string": '"x"',
            "deep": '{"id": "evt_1", "type": "x", "data": {"object": '
            + nested(1000, "array")
            + "}}",
            "id null": json.dumps(stripe_event(id=None)),
            "type null": json.dumps(stripe_event(type=None)),
            "id a number": json.dumps(stripe_event(id=7)),
            "id with NUL": json.dumps(stripe_event(id="evt_\u0000")),
            "type too long": json.dumps(stripe_event(type="t" * 101)),
            "no data.object": json.dumps(stripe_event(data={"object": []})),
            "created a string": json.dumps(stripe_event(created="yesterday")),
            "payment_id superscript": self.charge_with(metadata={"payment_id": "\u00b2"}),
            "payment_id huge": self.charge_with(metadata={"payment_id": "9" * 5000}),
            "metadata not strings": self.charge_with(metadata={"payment_id": 1}),
            "refunded 2^63": self.charge_with(amount_refunded=2**63),
            "refunded text 2^63": self.charge_with().replace(
                '"amount_refunded": 400', f'"amount_refunded": {two_to_63}'
            ),
            "negative amount": self.charge_with(amount=-1),
            "boolean amount": self.charge_with(amount_refunded=True),
            "brand too long": self.charge_with(
                payment_method_details={"card": {"brand": "b" * 33}}
            ),
            "lone surrogate": json.dumps(stripe_event()).replace("ch_hostile", "ch_\\ud800"),
            "NaN": self.charge_with().replace("400", "NaN"),
            "invalid UTF-8": b'{"id": "evt_\xff"}',
        }
        for name, text in cases.items():
            with self.subTest(name):
                self.assertRefusedUnchanged(
                    lambda text=text: self.deliver_text(text), {"invalid_payload"}
                )

    def test_a_bad_signature_is_still_invalid_signature(self):
        payload = json.dumps(stripe_event()).encode()
        response = self.client.generic(
            "POST", reverse("stripe-webhook"), payload, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign_webhook(payload, "whsec_other"),
        )  # fmt: skip
        self.assertRefused(response, {"invalid_signature"})
        deep_unsigned = self.client.generic(
            "POST", reverse("stripe-webhook"), nested(5000, "array"), content_type="application/json",
        )  # fmt: skip
        self.assertRefused(deep_unsigned, {"invalid_signature"})

    def deliver_signed_as(self, signature):
        payload = json.dumps(stripe_event()).encode()
        return self.client.generic(
            "POST", reverse("stripe-webhook"), payload, content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
        )  # fmt: skip

    def test_odd_signature_headers_are_invalid_signature_not_500(self):
        # A WSGI server hands header bytes over decoded as latin-1 (PEP 3333): the
        # UTF-8 bytes of "é" arrive as "Ã©". hmac.compare_digest raises TypeError on
        # non-ASCII str, inside stripe's verifier (issue 19, #3).
        good = sign_bytes(json.dumps(stripe_event()).encode(), SECRET)
        cases = {
            "UTF-8 bytes, latin-1 decoded": b"t=1,v1=\xc3\xa9".decode("latin-1"),
            "a lone latin-1 byte": "t=1,v1=\xe9",
            "non-ASCII digits in t": "t=\u0661,v1=" + "a" * 64,
            "a good signature and a non-ASCII one": good + ",v1=\xe9",
            "empty": "",
            "blank": "   ",
            "NUL": "t=1,v1=\x00",
            "control characters": "t=1,\r\nv1=\x1b[31m",
            "DEL": "t=1,v1=\x7f",
            "very long": "t=1," + ",".join(["v1=" + "a" * 64] * 2000),
            "huge timestamp": "t=" + "9" * 5000 + ",v1=" + "a" * 64,
            "not the format": "sha256=abc",
        }
        for name, header in cases.items():
            with self.subTest(name):
                self.assertRefusedUnchanged(
                    lambda header=header: self.deliver_signed_as(header), {"invalid_signature"}
                )

    @hostile_settings
    @given(
        header=st.one_of(
            st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),  # as WSGI decodes
            st.text(max_size=300),
            # a signature that verifies, with something no Stripe header holds after it
            st.builds(
                lambda junk: sign_bytes(json.dumps(stripe_event()).encode(), SECRET) + junk,
                st.text(st.characters(min_codepoint=0x7F), min_size=1, max_size=20),
            ),
        )
    )
    def test_property_any_signature_header_is_a_4xx(self, header):
        self.assertRefusedUnchanged(lambda: self.deliver_signed_as(header), {"invalid_signature"})

    @hostile_settings
    @given(
        field=st.sampled_from(["id", "type", "created", "data", "object"]),
        value=st.one_of(deep, lone_surrogate, huge_int, not_json, wrong_type, oversized),
    )
    def test_property_hostile_event_fields(self, field, value):
        if field == "created" and value.lstrip("-").isdigit():
            value = json.dumps(value)  # any integer is a valid Unix time: send it as text
        text = with_field(stripe_event(), field, value)
        self.assertRefusedUnchanged(lambda: self.deliver_text(text), {"invalid_payload"})

    @hostile_settings
    @given(
        field=st.sampled_from(["amount", "amount_refunded", "metadata"]),
        value=st.one_of(deep, lone_surrogate, huge_int, not_json, oversized,
                        st.sampled_from(["true", '"12"', "1.5", "[1]", '{"payment_id": "\\u0661"}'])),
    )  # fmt: skip
    def test_property_hostile_charge_fields(self, field, value):
        obj = json.loads(self.charge_with())["data"]["object"]
        text = with_field(stripe_event(), "data", json.dumps({"object": "@@OBJ@@"})).replace(
            '"@@OBJ@@"', with_field(obj, field, value)
        )
        self.assertRefusedUnchanged(lambda: self.deliver_text(text), {"invalid_payload"})

    @hostile_settings
    @given(body=st.one_of(top_level, invalid_utf8))
    def test_property_hostile_whole_bodies(self, body):
        self.assertRefusedUnchanged(lambda: self.deliver_text(body), {"invalid_payload"})


# ------------------------------------------------------- every write endpoint
@override_settings(**GENEROUS_RATES)
class WriteEndpointPropertyTests(FakeStripeMixin, FakeNotificationServicesMixin, HostileCase):
    @classmethod
    def setUpTestData(cls):
        cls.user = User.objects.create_user("fuzzed", password="correct-horse-battery-42")
        cls.staff = User.objects.create_user("fuzzstaff", is_staff=True)
        cls.paid = Payment.objects.create(
            owner=cls.user, amount=1000, currency="usd", method="token", status="succeeded",
            stripe_charge_id="ch_fuzz",
        )  # fmt: skip
        Device.objects.create(user=cls.user, platform="ios", push_token="tok-1", hwid="h1")

    @hostile_settings
    @given(field=st.sampled_from(sorted(VALID_CARD)), value=FULL_CORPUS)
    def test_property_payments(self, field, value):
        self.client.force_authenticate(self.user)
        text = with_field(VALID_CARD, field, value)
        key = uuid.uuid4().hex  # a fresh key: a refused body must not consume it either
        self.assertRefusedUnchanged(
            lambda: self.post_text(reverse("payments"), text, HTTP_IDEMPOTENCY_KEY=key)
        )

    @hostile_settings
    @given(
        field_value=st.one_of(
            st.tuples(st.just("platform"), FULL_CORPUS),
            st.tuples(st.just("push_token"), st.one_of(STRUCTURAL, huge_int, wrong_type)),
        )
    )
    def test_property_devices(self, field_value):
        self.client.force_authenticate(self.user)
        text = with_field({"platform": "android", "push_token": "tok-2"}, *field_value)
        self.assertRefusedUnchanged(lambda: self.post_text(reverse("devices"), text))

    @hostile_settings
    @given(
        field_value=st.one_of(
            st.tuples(st.just("reason"), FULL_CORPUS),
            # amount: RefundSerializer is the refunds owner's; Unicode digit strings are
            # left out here until it uses conventions.fields.StrictIntegerField.
            st.tuples(st.just("amount"), st.one_of(STRUCTURAL, huge_int, wrong_type)),
        )
    )
    def test_property_refund(self, field_value):
        self.client.force_authenticate(self.staff)
        if field_value == ("amount", "0"):
            field_value = ("amount", "-1")
        text = with_field({"amount": 100, "reason": "requested_by_customer"}, *field_value)
        url = reverse("payment-refund", args=[self.paid.pk])
        self.assertRefusedUnchanged(lambda: self.post_text(url, text))

    @hostile_settings
    @given(
        name=st.sampled_from(["register", "token"]),
        field=st.sampled_from(["username", "password", "email"]),
        value=STRUCTURAL,
    )
    def test_property_auth(self, name, field, value):
        self.client.force_authenticate(None)
        base = {"username": "newcomer", "password": "correct-horse-battery-42"}
        text = with_field(base, field, value)
        self.assertRefusedUnchanged(lambda: self.post_text(reverse(name), text))

    @hostile_settings
    @given(
        name=st.sampled_from(["register", "token", "payments", "devices", "refund"]),
        body=st.one_of(top_level, invalid_utf8),
    )
    def test_property_whole_bodies(self, name, body):
        url = reverse("payment-refund", args=[self.paid.pk]) if name == "refund" else reverse(name)
        self.client.force_authenticate(self.staff if name == "refund" else self.user)
        self.assertRefusedUnchanged(lambda: self.post_text(url, body))


# ------------------------------------------------------------ nothing half-written
class NothingHalfWrittenTests(FakeStripeMixin, HostileCase):
    def setUp(self):
        super().setUp()
        self.user = User.objects.create_user("crash")
        self.client.force_authenticate(self.user)

    def test_an_unexpected_exception_in_the_provider_call_releases_the_lock(self):
        self.client.raise_request_exception = False
        with (
            mock.patch("stripe.Charge.create", side_effect=RuntimeError("unexpected")),
            self.assertLogs("django.request", "ERROR"),
        ):
            response = self.client.post(
                reverse("payments"), {"token": "tok_visa", "amount": 500}, format="json",
                HTTP_IDEMPOTENCY_KEY="crash-1",
            )  # fmt: skip
        self.assertEqual(response.status_code, 500)
        payment = Payment.objects.get()
        self.assertEqual(payment.status, "pending")  # reconcile_payments settles it
        self.assertIsNone(payment.locked_until)
        self.assertIsNone(payment.response_body)
        # A retry with the same key claims the row again instead of waiting for the lock.
        retry = self.client.post(
            reverse("payments"), {"token": "tok_visa", "amount": 500}, format="json",
            HTTP_IDEMPOTENCY_KEY="crash-1",
        )  # fmt: skip
        self.assertEqual(retry.status_code, 201, retry.content)
        self.assertEqual(Payment.objects.get().status, "succeeded")


# ----------------------------------------------------------------------- schema
class SchemaDocumentsErrorsTests(APITestCase):
    def test_every_operation_documents_its_generic_errors(self):
        schema = self.client.get(reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
        paths = schema.json()["paths"]
        expected = {
            ("/api/payments/", "get"): {"200", "400", "401", "404", "429"},
            ("/api/payments/", "post"): {
                "201",
                "202",
                "400",
                "401",
                "409",
                "413",
                "415",
                "422",
                "429",
                "503",
            },
            ("/api/payments/{id}/", "get"): {"200", "401", "404"},
            ("/api/payments/{id}/refund/", "post"): {
                "200",
                "400",
                "401",
                "403",
                "404",
                "413",
                "415",
            },
            ("/api/devices/", "post"): {"200", "201", "400", "401", "413", "415", "502", "503"},
            ("/api/devices/{id}/", "delete"): {"204", "401", "404"},
            ("/api/auth/register/", "post"): {"201", "400", "413", "415", "429"},
            ("/api/stripe/webhook/", "post"): {"200", "400", "413", "503"},
            ("/api/health/", "get"): {"200", "503"},
        }
        for (path, method), codes in expected.items():
            with self.subTest(path=path, method=method):
                self.assertLessEqual(codes, set(paths[path][method]["responses"]))
        page = {p["name"]: p["schema"] for p in paths["/api/payments/"]["get"]["parameters"]}
        self.assertEqual(page["page"]["minimum"], 1)
        self.assertEqual((page["page_size"]["minimum"], page["page_size"]["maximum"]), (1, 100))
        self.assertNotIn("415", paths["/api/stripe/webhook/"]["post"]["responses"])
