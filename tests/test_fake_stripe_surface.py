"""Fidelity generated from stripe-python's declarations (issue 12): for every endpoint the
library knows, one unknown and one ill-typed parameter are refused with Stripe's code and
`param`; every generic answer the fake produces is checked against the resource class the
library declares for it, like the stateful answers in test_fake_stripe_fidelity."""

import json
from unittest import mock

import stripe
from django.test import SimpleTestCase

from backend.fakeservices import start_fake_services
from fakes.stripe import FakeStripe, routes
from fakes.stripe.coverage import GENERIC, REFUSED, STATEFUL, coverage
from fakes.stripe.params import schema_for
from payments.testing import encode_form, fake_stripe, stripe_server
from tests.test_fake_stripe_fidelity import declared_fields

AUTH = {"Authorization": "Bearer sk_test_surface"}


def dummy(node):
    """A valid value for a declared parameter node, in the form stripe-python would send."""
    kind = node[0]
    if kind == "int":
        return 1
    if kind == "float":
        return 1.5
    if kind == "bool":
        return True
    if kind == "enum":
        return sorted(node[1])[0]
    if kind == "list":
        return [dummy(node[1])]
    if kind == "map":
        return {"k": "v"}
    if kind == "obj":
        value = {name: dummy(child) for name, (required, child) in node[1].items() if required}
        if not value and node[1]:  # an empty object is not sent at all: give it one field
            name, (_, child) = next(iter(sorted(node[1].items())))
            value = {name: dummy(child)}
        return value
    if kind == "union":
        return dummy(node[1][0])
    return "x"


ILL_TYPED = {
    "int": ("ten", "parameter_invalid_integer"),
    "float": ("ten", None),
    "bool": ("maybe", None),
    "list": ("scalar", None),
    "obj": ("scalar", None),
}


def ill_typed_case(fields):
    """(name, bad value, expected code) for one declared parameter, or None."""
    for name, (_, node) in sorted(fields.items()):
        if name == "metadata":
            continue
        if node[0] in ILL_TYPED:
            value, code = ILL_TYPED[node[0]]
            return name, value, code
        if node[0] == "enum" and not node[2]:
            return name, "no_such_value", None
    for name, (_, node) in sorted(fields.items()):
        if node[0] == "str":
            return name, {"nested": "object"}, None
    return None


def path_for(endpoint):
    return routes.PLACEHOLDER.sub("fake_missing_id", endpoint.template)


class RequestSideCasesTests(SimpleTestCase):
    """One unknown and one ill-typed parameter per endpoint, refused as Stripe refuses them."""

    def send(self, engine, endpoint, params):
        form = encode_form(params)
        query, body = (form, b"") if endpoint.method in ("GET", "DELETE") else ("", form.encode())
        answer = engine.handle(endpoint.method, path_for(endpoint), query, body, AUTH)
        return answer.status, json.loads(answer.body)

    def test_every_endpoint_refuses_an_unknown_and_an_ill_typed_parameter(self):
        engine = FakeStripe()
        table = coverage()
        answered = table[STATEFUL] + table[GENERIC]
        checked_types = 0
        for endpoint in answered:
            fields = schema_for(endpoint)[1]
            required = {n: dummy(c) for n, (r, c) in fields.items() if r}
            where = f"{endpoint.method} {endpoint.template}"
            status, body = self.send(engine, endpoint, {**required, "fake_bogus_param": "1"})
            self.assertEqual(status, 400, where)
            self.assertEqual(
                (body["error"].get("code"), body["error"].get("param")),
                ("parameter_unknown", "fake_bogus_param"),
                where,
            )
            case = ill_typed_case(fields)
            if case is None:
                continue
            name, value, code = case
            status, body = self.send(engine, endpoint, {**required, name: value})
            self.assertEqual(status, 400, f"{where} {name}={value!r}: {body}")
            self.assertEqual(body["error"]["type"], "invalid_request_error", where)
            self.assertTrue(body["error"].get("param", "").startswith(name), f"{where}: {body}")
            if code:
                self.assertEqual(body["error"].get("code"), code, where)
            checked_types += 1
        self.assertGreater(len(answered), 500)
        self.assertGreater(checked_types, 450)
        self.assertEqual(engine.objects, {})  # nothing refused was stored

    def test_refused_endpoints_answer_a_clear_4xx(self):
        engine = FakeStripe()
        for endpoint in coverage()[REFUSED]:
            status, body = self.send(engine, endpoint, {})
            self.assertIn(status, (400, 404), f"{endpoint.method} {endpoint.template}")
            self.assertEqual(body["error"]["type"], "invalid_request_error")


class GenericAnswerShapeTests(SimpleTestCase):
    """Every top-level create, singleton retrieve and list answered generically has the
    shape stripe-python declares (the same check as test_fake_stripe_fidelity's)."""

    def assertShape(self, obj, cls, where):
        fields = declared_fields(cls)
        undeclared = set(obj) - set(fields)
        self.assertFalse(undeclared, f"{where}: undeclared fields {sorted(undeclared)}")
        missing = {name for name, (optional, _) in fields.items() if not optional} - set(obj)
        self.assertFalse(missing, f"{where}: required fields missing: {sorted(missing)}")

    def test_generic_answers_match_the_declarations(self):
        engine = FakeStripe()
        checked = set()
        for endpoint in coverage()[GENERIC]:
            if routes.PLACEHOLDER.search(endpoint.template) or endpoint.kind == "search":
                continue
            fields = schema_for(endpoint)[1]
            params = {n: dummy(c) for n, (r, c) in fields.items() if r}
            if "currency" in params:  # a currency of Stripe's table (the fake checks it)
                params["currency"] = "usd"
            form = encode_form(params)
            get = endpoint.method in ("GET", "DELETE")
            answer = engine.handle(
                endpoint.method,
                endpoint.template,
                form if get else "",
                b"" if get else form.encode(),
                AUTH,
            )
            where = f"{endpoint.method} {endpoint.template}"
            self.assertEqual(answer.status, 200, f"{where}: {answer.body[:300]}")
            self.assertEqual(answer.headers.get("Fake-Stripe-Generic"), "true", where)
            body = json.loads(answer.body)
            cls = endpoint.resource_class()
            if body.get("object") == "list":
                self.assertEqual(body["url"], endpoint.template)
                for item in body["data"]:
                    self.assertShape(item, cls, where)
            else:
                self.assertEqual(body.get("object", cls.OBJECT_NAME), cls.OBJECT_NAME, where)
                self.assertShape(body, cls, where)
                if "id" in body:
                    retrieved = json.loads(
                        engine.handle(
                            "GET", f"{endpoint.template}/{body['id']}", "", b"", AUTH
                        ).body
                    )
                    if retrieved.get("object") == cls.OBJECT_NAME:
                        self.assertEqual(retrieved["id"], body["id"], where)
            checked.add(endpoint.template)
        self.assertGreater(len(checked), 115)  # (balance and balance transactions are stateful)

    def test_the_shape_check_can_fail(self):
        with self.assertRaises(AssertionError):
            self.assertShape(
                {"id": "prod_1", "object": "product", "invented": 1}, stripe.Product, "x"
            )


def shape_errors(obj, cls, path="", depth=0):
    """Fields a declared class does not have, and required fields missing, nested."""
    from tests.test_fake_stripe_fidelity import resolve

    fields = declared_fields(cls)
    errors = [f"{path}.{name}: undeclared" for name in set(obj) - set(fields)]
    errors += [f"{path}.{name}: missing" for name, (optional, _) in fields.items()
               if not optional and name not in obj]  # fmt: skip
    for name, value in obj.items():
        if name in fields and isinstance(value, dict) and depth < 6:
            nested = resolve(fields[name][1], value)
            if nested is not None and nested is not stripe.ListObject:
                errors += shape_errors(value, nested, f"{path}.{name}", depth + 1)
    return errors


class EveryAnswerShapeTests(SimpleTestCase):
    """Every answer the engine gives in a scripted run, through the in-process HTTP layer
    and through the server, checked against the resource class its endpoint declares."""

    def script(self):
        stripe.Charge.create(
            amount=1000,
            currency="usd",
            source="tok_visa",
            shipping={"name": "A", "address": {"city": "P"}},
        )
        held = stripe.Charge.create(
            amount=1000, currency="usd", source="tok_mastercard", capture=False
        )
        stripe.Charge.capture(held.id, amount=400)
        stripe.Refund.create(charge=held.id)
        for source in (
            "tok_chargeDeclinedExpiredCard",
            "tok_riskLevelElevated",
            "tok_createDispute",
        ):
            try:
                stripe.Charge.create(amount=1000, currency="usd", source=source)
            except stripe.CardError:
                pass
        for method in (
            "pm_card_visa",
            "pm_card_threeDSecure2Required",
            "pm_card_visa_chargeDeclined",
        ):
            try:
                stripe.PaymentIntent.create(amount=1000, currency="usd", payment_method=method, confirm=True,
                                            allowed_payment_method_types=["card"])  # fmt: skip
            except stripe.CardError:
                pass
        customer = stripe.Customer.create(
            source="tok_visa", preferred_locales=["en"], address={"city": "X"}
        )
        stripe.Customer.modify(customer.id, metadata={"a": "b"})
        stripe.Customer.retrieve(customer.id)
        product = stripe.Product.create(name="Tea")
        stripe.Price.create(currency="usd", unit_amount=100, product=product.id)
        stripe.SetupIntent.create(customer=customer.id)
        stripe.Balance.retrieve()
        for listing in (
            stripe.Charge,
            stripe.PaymentIntent,
            stripe.Refund,
            stripe.Event,
            stripe.Product,
        ):
            listing.list(limit=3)
        stripe.Charge.search(query="amount>100")
        stripe.Product.delete(product.id)

    def recorded(self, run):
        answers = []
        real = FakeStripe.handle

        def handle(engine, method, path, query, body, headers):
            answer = real(engine, method, path, query, body, headers)
            answers.append((method.upper(), path, answer.status, json.loads(answer.body)))
            return answer

        with mock.patch.object(FakeStripe, "handle", handle):
            run()
        return answers

    def check(self, answers):
        router, errors, checked = routes.router(), [], 0
        for method, path, status, body in answers:
            if status != 200:
                self.assertIn("error", body, path)
                continue
            endpoint, _ = router.match(method, path)
            cls = endpoint.resource_class()
            items = body["data"] if body.get("object") in ("list", "search_result") else [body]
            for item in items:
                if item.get("deleted"):
                    continue
                item_cls = cls
                if item.get("object") == "event":
                    inner = item["data"]["object"]
                    inner_cls = next(c for c in (stripe.Charge, stripe.PaymentIntent, stripe.Refund,
                                      stripe.Customer, stripe.Dispute, stripe.PaymentMethod,
                                      stripe.SetupIntent)
                                      if c.OBJECT_NAME == inner["object"])  # fmt: skip
                    errors += shape_errors(inner, inner_cls, f"{path}.data.object")
                errors += shape_errors(item, item_cls, f"{method} {path}")
                checked += 1
        self.assertEqual(errors, [])
        return checked

    def test_in_process_and_server_answers_match_the_declarations(self):
        with fake_stripe():
            in_process = self.recorded(self.script)
        engine = FakeStripe()
        server = start_fake_services({"/stripe": engine})
        self.addCleanup(server.stop)
        with stripe_server(server.url + "/stripe", api_key="sk_test_shapes"):
            served = self.recorded(self.script)

        def outline(answers):  # method, path with ids blanked, status
            return [(m, routes.PLACEHOLDER.sub("", routes.router().match(m, p)[0].template), st)
                    for m, p, st, _ in answers]  # fmt: skip

        self.assertEqual(outline(in_process), outline(served))
        self.assertGreater(self.check(in_process), 30)
        self.assertGreater(self.check(served), 30)

    def test_the_nested_check_can_fail(self):
        charge = {"id": "ch_1", "object": "charge", "outcome": {"invented": 1}}
        self.assertTrue(any("outcome.invented" in e for e in shape_errors(charge, stripe.Charge)))


class RouteSourcesTests(SimpleTestCase):
    def test_only_the_named_resource_modules_call_routes_their_services_lack(self):
        """routes.LEGACY_RESOURCE_MODULES is the whole list: scanning every resource module's
        `_static_request` calls finds no route the services lack outside it."""
        from pathlib import Path

        root = Path(stripe.__file__).parent
        known = {(e.method, e.template) for e in routes.endpoints()}
        missing = set()
        for path in root.rglob("_*.py"):
            if path.name.endswith("_service.py") or "params" in path.parts:
                continue
            for endpoint in routes._endpoints_in(path, routes.RESOURCE_CALLS):
                if (endpoint.method, endpoint.template) not in known:
                    missing.add((path.name, endpoint.method, endpoint.template))
        self.assertEqual(missing, set())
        legacy = [e for e in routes.endpoints() if e.service.startswith("Charge.")]
        self.assertEqual({(e.method, e.template, e.kind) for e in legacy}, {
            ("GET", "/v1/charges/{charge}/refunds", "list"),
            ("GET", "/v1/charges/{charge}/refunds/{refund}", "retrieve")})  # fmt: skip
