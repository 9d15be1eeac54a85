"""Fidelity generated from stripe-python's declarations (issue 12): for every endpoint the
library knows, one unknown and one ill-typed parameter are refused with Stripe's code and
`param`; every generic answer the fake produces is checked against the resource class the
library declares for it, like the stateful answers in test_fake_stripe_fidelity."""

import json

import stripe
from django.test import SimpleTestCase

from payments.testing import encode_form
from payments.testing.engine import FakeStripe, routes
from payments.testing.engine.coverage import GENERIC, REFUSED, STATEFUL, coverage
from payments.testing.engine.params import schema_for
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
        self.assertGreater(len(checked), 120)

    def test_the_shape_check_can_fail(self):
        with self.assertRaises(AssertionError):
            self.assertShape(
                {"id": "prod_1", "object": "product", "invented": 1}, stripe.Product, "x"
            )
