"""Endpoints with no model: a well-formed object of the declared resource type, stored.

Built from the resource class stripe-python declares for the endpoint's answer (its
annotations): declared parameters of the request are echoed into fields of the same name,
other optional fields are null, required ones get an empty value of their type (nested
objects built the same way). Objects are stored, so retrieve, update, list, search and delete
work on them; every generic answer carries the `Fake-Stripe-Generic: true` header. Like
stripe-mock, nothing here models behaviour: use the stateful resources for that.
"""

import bisect
import functools
import re
import time
import typing

import stripe
from stripe._stripe_object import UntypedStripeObject

from fakes.stripe.currencies import PRESENTMENT
from fakes.stripe.params import apply_metadata
from fakes.stripe.store import sequence
from fakes.stripe.wire import StripeError, invalid, not_found

PREFIXES = {
    "account": "acct", "application_fee": "fee", "balance_transaction": "txn",
    "bank_account": "ba", "billing_portal.session": "bps", "checkout.session": "cs_test",
    "coupon": "co", "credit_note": "cn", "dispute": "dp", "ephemeral_key": "ephkey",
    "file": "file", "file_link": "link", "invoice": "in", "invoiceitem": "ii",
    "mandate": "mandate", "payment_link": "plink", "payout": "po", "plan": "plan",
    "price": "price", "product": "prod", "promotion_code": "promo", "quote": "qt",
    "review": "prv", "setup_attempt": "setatt", "setup_intent": "seti", "source": "src",
    "subscription": "sub", "subscription_item": "si", "subscription_schedule": "sub_sched",
    "tax_id": "txi", "tax_rate": "txr", "test_helpers.test_clock": "clock", "topup": "tu",
    "transfer": "tr", "transfer_reversal": "trr", "webhook_endpoint": "we",
    "product_feature": "prodft", "entitlements.feature": "feat",
}  # fmt: skip


LIST_PARAMS = {"created", "limit", "starting_after", "ending_before", "expand"}


def prefix_for(object_name):
    if object_name in PREFIXES:
        return PREFIXES[object_name]
    words = object_name.replace(".", "_").split("_")
    return "".join(word[0] for word in words if word) if len(words) > 1 else object_name[:4]


@functools.cache
def fields_of(cls):
    """[(name, annotation, optional)] declared on a stripe resource class."""
    found = []
    for name, annotation in vars(cls).get("__annotations__", {}).items():
        if name.startswith("_") or typing.get_origin(annotation) is typing.ClassVar:
            continue
        args = typing.get_args(annotation)
        optional = typing.get_origin(annotation) is typing.Union and type(None) in args
        found.append((name, annotation, optional))
    return tuple(found)


def _members(annotation):
    origin = typing.get_origin(annotation)
    if origin is typing.Union:
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _class_of(annotation):
    """The StripeObject class a field holds, if it names one (ForwardRefs resolved)."""
    for member in _members(annotation):
        if isinstance(member, typing.ForwardRef):
            member = getattr(stripe, member.__forward_arg__, None)
        if isinstance(member, type) and issubclass(member, stripe.StripeObject):
            if member is UntypedStripeObject or member is stripe.StripeObject:
                continue
            return member
    return None


def empty_value(annotation, path, depth):
    members = _members(annotation)
    first = members[0]
    origin = typing.get_origin(first)
    if origin is typing.Literal:
        return typing.get_args(first)[0]
    if first in (int, float):
        return 0
    if first is bool:
        return False
    if first is str:
        return ""
    if origin in (list, list):
        return []
    if origin in (dict, dict) or first is UntypedStripeObject:
        return {}
    if origin is UntypedStripeObject:
        return {}
    cls = _class_of(first) if not isinstance(first, typing.ForwardRef) else _class_of(annotation)
    if cls is stripe.ListObject or (
        isinstance(first, type) and issubclass(first, stripe.ListObject)
    ):
        return {"object": "list", "data": [], "has_more": False, "url": path}
    if cls is not None and depth < 4:
        if getattr(cls, "OBJECT_NAME", None):
            return ""  # a reference to another resource: its id (none here)
        return build(cls, {}, path, depth + 1)
    return None


def build(cls, params, path, depth=0, object_id=None):
    now = int(time.time())
    obj = {}
    for name, annotation, optional in fields_of(cls):
        if name == "object" and getattr(cls, "OBJECT_NAME", None):
            obj[name] = cls.OBJECT_NAME
        elif name == "id" and depth == 0:
            obj[name] = object_id
        elif name == "created" or (name == "updated" and not optional):
            obj[name] = now  # (an account's `created` is declared optional, and is set)
        elif name == "livemode":
            obj[name] = False
        elif name in params:
            obj[name] = echo(params[name], annotation, path, depth)
        elif optional:
            obj[name] = None
        else:
            obj[name] = empty_value(annotation, path, depth)
    for name in getattr(cls, "_inner_class_dicts", ()):
        if obj.get(name) is None and name in obj:
            obj[name] = {}  # a map of sub-objects: stripe-python reads it with .items()
    if "metadata" in obj and isinstance(params.get("metadata"), dict | str):
        obj["metadata"] = apply_metadata({}, params["metadata"])
    elif "metadata" in obj and depth == 0:
        obj["metadata"] = {}  # Stripe answers {} for an object's metadata, never null
    return obj


def echo(value, annotation, path, depth):
    """A request parameter as the field of the same name holds it."""
    cls = _class_of(annotation)
    if isinstance(value, dict) and cls is not None and not getattr(cls, "OBJECT_NAME", None):
        return build(cls, value, path, depth + 1)
    if isinstance(value, list):
        inner = [a for m in _members(annotation) for a in typing.get_args(m)]
        item_cls = next((c for c in map(_class_of, inner) if c is not None), None)
        if item_cls is not None and not getattr(item_cls, "OBJECT_NAME", None):
            return [
                build(item_cls, v, path, depth + 1) if isinstance(v, dict) else v for v in value
            ]
    if value == "":
        return None
    return value


def resource_list_fields(cls):
    """{field: item class} for the fields a resource declares as a list of whole objects of
    another resource (a `List["TaxRate"]`, not an expandable `List[str | Discount]`): a
    request names them by id, the answer holds the objects (an invoice item's `tax_rates`)."""
    found = {}
    for name, annotation, _ in fields_of(cls):
        for member in _members(annotation):
            if typing.get_origin(member) is not list:
                continue
            (item,) = typing.get_args(member) or (None,)
            if typing.get_origin(item) is typing.Union:
                continue
            item_cls = _class_of(item) if item is not None else None
            if item_cls is not None and getattr(item_cls, "OBJECT_NAME", None):
                found[name] = item_cls
    return found


@functools.cache
def list_fields(cls):
    """{field: item class} for a resource's `ListObject[...]` fields of one resource type."""
    found = {}
    for name, annotation, _ in fields_of(cls):
        for member in _members(annotation):
            origin = typing.get_origin(member) or member
            if not (isinstance(origin, type) and issubclass(origin, stripe.ListObject)):
                continue
            (item,) = typing.get_args(member) or (None,)
            if item is None or typing.get_origin(item) is typing.Union:
                continue
            item_cls = _class_of(item)
            if item_cls is not None and getattr(item_cls, "OBJECT_NAME", None):
                found[name] = item_cls
    return found


@functools.cache
def _retrieve_templates(cls):
    from fakes.stripe.routes import endpoints

    return tuple(
        e.template
        for e in endpoints()
        if e.method == "GET" and e.kind == "retrieve" and e.template.endswith("}")
        and e.template.count("{") == 1 and e.resource_class() is cls
    )  # fmt: skip


def sublist_url(cls, object_id, field):
    """The URL that lists an object's sub-list (/v1/invoices/in_1/lines), from the routes."""
    from fakes.stripe.routes import endpoints

    listed = {(e.method, e.template) for e in endpoints()}
    for template in _retrieve_templates(cls):
        if ("GET", f"{template}/{field}") in listed:
            return f"{template[: template.rfind('{')]}{object_id}/{field}"
    return f"/v1/{cls.OBJECT_NAME}s/{object_id}/{field}"


def shaped(cls, name, params):
    """A request parameter as field `name` of a resource declares it (None if not given)."""
    if params.get(name) in (None, ""):
        return None
    annotation = next(a for field, a, _ in fields_of(cls) if field == name)
    return echo(params[name], annotation, "", 0)


# Initial statuses for generic objects whose first declared status would mislead.
INITIAL_STATUS = {"setup_intent": "requires_payment_method", "payout": "pending",
                  "payment_intent": "requires_payment_method", "charge": "succeeded",
                  "invoice": "draft", "subscription": "incomplete", "quote": "draft"}  # fmt: skip


def class_for(object_name):
    """The stripe-python resource class of an object type ("charge" -> stripe.Charge)."""
    from stripe._object_classes import get_object_class

    cls = get_object_class("V1", object_name)
    return cls if isinstance(cls, type) and getattr(cls, "OBJECT_NAME", None) else None


def union_class(endpoint):
    """The first resource of a union-typed answer (`Union[BankAccount, Card]`), for the
    stripe-mock-compatible mode; stripe-mock answers the union's first fixture too."""
    returns = endpoint.returns or ""
    inner = returns[returns.find("[") + 1 :].split("]")[0].replace("Union[", "")
    for name in (n.strip() for n in inner.split(",")):
        cls = getattr(stripe, name, None)
        if isinstance(cls, type) and getattr(cls, "OBJECT_NAME", None):
            return cls
    return None


class Generic:
    def _reset_generic(self):
        self._parents = {}  # generic object id -> the id of the object in its path
        self._fixtures = set()  # stripe-mock mode: ids of the fixtures answered so far

    def _drop_fixtures(self):
        """stripe-mock mode, before each request: fixtures do not keep state (stripe-mock
        answers every call from its fixture), so one test's call on `cus_123` never changes
        the next test's; objects the fake issued keep theirs."""
        for object_id in self._fixtures:
            self.objects.pop(object_id, None)
        self._fixtures.clear()

    def fixture(self, object_name, object_id=None, nested=True):
        """stripe-mock-compatible mode: a complete object of the resource for an id the fake
        never issued (or a new id), shaped by the declarations, stored from then on so later
        calls see the same object. None when stripe-python declares no such resource."""
        cls = class_for(object_name)
        if cls is None:
            return None
        obj = build(cls, {}, "", object_id=object_id or self.new_id(prefix_for(object_name)))
        if object_name in INITIAL_STATUS and "status" in obj:
            obj["status"] = INITIAL_STATUS[object_name]
        if "id" not in obj:
            return obj
        self.objects[obj["id"]] = obj
        self._fixtures.add(obj["id"])
        if nested:
            self._fixture_lists(obj, cls)
        return obj

    def _fixture_under(self, object_name, ids, path):
        """A fixture named by a nested URL (/v1/application_fees/{fee}/refunds/{id}): its
        fields named like the URL's parents hold their ids, as stripe-mock answers (so
        `refund.save()` posts back to the same URL)."""
        obj = self.fixture(object_name, ids[-1])
        names = [name.strip("{}") for name in re.findall(r"\{[^}]*\}", path)]
        for name, value in zip(names[:-1], ids[:-1], strict=False):
            if obj is not None and obj.get(name) in ("", None) and name in obj:
                obj[name] = value
        return obj

    def _fixture_lists(self, obj, cls):
        """A fixture's sub-lists (an invoice's `lines`, a charge's `refunds`, an application
        fee's `refunds`) hold one object, at the URL that lists them, as stripe-mock's
        fixtures do: stripe-python's tests read `invoice.lines.data[0]` and call
        `charge.refunds.retrieve(id)` (GET {url}/{id})."""
        for name, item_cls in list_fields(cls).items():
            item = self.fixture(item_cls.OBJECT_NAME, nested=False)
            if item is None:
                continue
            obj[name] = {"object": "list", "data": [item], "has_more": False,
                         "url": sublist_url(cls, obj["id"], name)}  # fmt: skip

    def generic(self, endpoint, params, ids):
        cls = endpoint.resource_class()
        kind = endpoint.kind
        path = endpoint.template
        if kind == "search":
            return self.search(endpoint, params, path)
        if cls is None and self.stripe_mock:
            cls = union_class(endpoint)
        if cls is None:
            raise invalid(
                f"The fake Stripe does not answer {endpoint.method} {endpoint.template}: "
                f"stripe-python declares no single resource for it ({endpoint.returns}).",
                status=400,
            )
        name = cls.OBJECT_NAME
        if kind == "list":
            if ids:
                return self.page(name, params, path, (), parent=ids[-1])
            filters = {f for f, _, _ in fields_of(cls)} & set(params) - LIST_PARAMS
            return self.page(name, params, path, tuple(filters))
        parent = self._parent_of(ids[:-1] if kind in ("retrieve", "update", "delete") else ids)
        if kind in ("retrieve", "update", "delete") and ids:
            found = self.objects.get(ids[-1])
            if found is None and self.stripe_mock:
                found = self._fixture_under(name, ids, path)
            if self.stripe_mock and not path.endswith("}") and (found or {}).get("object") != name:
                # a singleton under its parent (/v1/customers/{customer}/cash_balance)
                singleton = build(cls, params, path)
                return {**singleton, "deleted": True} if kind == "delete" else singleton
            if (found is None or found.get("object") != name) and name == "account":
                # an account the key cannot reach: 403 (docs.stripe.com/error-codes#account-invalid)
                raise StripeError(
                    403,
                    "invalid_request_error",
                    "The provided key does not have access to account "
                    f"'{ids[-1]}' (or that account does not exist). Application access may "
                    "have been revoked.",
                    "account_invalid",
                )
            if found is None or found.get("object") != name:
                raise not_found(name, ids[-1])
            if kind == "retrieve":
                return found
            if kind == "delete":
                del self.objects[ids[-1]]
                return {"id": ids[-1], "object": name, "deleted": True}
            self._update(found, cls, params, path)
            self._resolve_resource_lists(found, cls, params)
            return found
        if kind == "retrieve" and name == "account" and isinstance(self._account, str):
            return self.objects[self._account]  # GET /v1/account as a connected account
        if kind == "retrieve":  # a singleton such as /v1/balance
            return build(cls, params, path)
        if kind == "action" and ids:
            found = self.objects.get(ids[-1])
            if found is None and self.stripe_mock:
                found = self._fixture_under(name, ids, path)
            if found is not None and found.get("object") == name:
                self._update(found, cls, params, path)
                self._act(found, cls, path)
                return found
        # create (top level or nested under its parent)
        if path == "/v1/invoices/create_preview":
            self._check_invoice_preview(params)  # (subscriptions.py)
        currency = params.get("currency")
        if kind == "create" and isinstance(currency, str) and currency.lower() not in PRESENTMENT:
            raise invalid(f"Invalid currency: {currency}.", "parameter_invalid_string", "currency")
        if kind == "create" and name in ("plan", "price"):
            # a product given inline (plan `product[name]`, price `product_data`) is created
            # and named by its id (docs.stripe.com/api/plans/create#create_plan-product)
            inline = params.get("product") if name == "plan" else params.pop("product_data", None)
            if isinstance(inline, dict):
                made = self.generic_create("product", inline)
                params = {**params, "product": made["id"]}
        given_id = params.get("id") if kind == "create" and "id" in params else None
        if given_id is not None and given_id in self.objects:
            raise invalid(f"{cls.__name__} already exists.", "resource_already_exists", "id")
        obj = build(cls, params, path, object_id=None)
        self._resolve_resource_lists(obj, cls, params)
        if name in INITIAL_STATUS and "status" in obj:
            obj["status"] = INITIAL_STATUS[name]
        if name == "price":
            # "type: One of one_time or recurring depending on whether the price is for a
            # one-time purchase or a recurring (subscription) purchase" (docs.stripe.com/api/prices/object)
            obj["type"] = "recurring" if params.get("recurring") else "one_time"
            if params.get("unit_amount") is not None and not params.get("unit_amount_decimal"):
                obj["unit_amount_decimal"] = str(params["unit_amount"])
        if name == "invoiceitem":
            # as docs.stripe.com/api/invoiceitems/create answers: quantity 1, tax_rates []
            obj["quantity"] = obj.get("quantity") or 1
            obj["tax_rates"] = obj.get("tax_rates") or []
        if name == "plan" and params.get("amount") is not None:
            obj["amount_decimal"] = str(params["amount"])
        if "active" in obj and "active" not in params and isinstance(obj["active"], bool):
            # products, plans, prices, ...: "active: Whether the ... is currently available
            # for purchase. Defaults to true." (docs.stripe.com/api/products/create)
            obj["active"] = True
        if "id" in obj and given_id is not None:
            # products and plans take an `id` on create (docs.stripe.com/api/products/create:
            # "If not provided, an identifier will be randomly generated"); such an id has no
            # counter, so it sorts first in its index (store.sequence is -1)
            obj["id"] = given_id
            self.objects[given_id] = obj
            self._own(given_id)  # (a connected account's, when made with its header)
            bisect.insort(self._indexes.setdefault((name, None, None), []), given_id, key=sequence)
        elif "id" in obj:
            obj["id"] = self.new_id(prefix_for(name))
            self.store(obj)
            if parent is not None:
                self._parents[obj["id"]] = parent
                self._index_add((name, "parent", parent), obj["id"])
        return obj

    # Actions named for the status they lead to (POST /v1/payouts/{id}/cancel -> canceled),
    # applied where the resource declares that status.
    ACTION_STATUS = {"cancel": "canceled", "void": "void", "finalize": "open", "pay": "paid",
                     "mark_uncollectible": "uncollectible", "close": "closed",
                     "expire": "expired", "reverse": "reversed"}  # fmt: skip

    def _act(self, found, cls, path):
        status = self.ACTION_STATUS.get(path.rsplit("/", 1)[-1])
        if status is None or "status" not in found:
            return
        annotation = next((a for f, a, _ in fields_of(cls) if f == "status"), None)
        values = {str(v) for m in _members(annotation) for v in typing.get_args(m)}
        if status in values or not values:  # (a plain `str` status takes any)
            found["status"] = status

    def _resolve_resource_lists(self, obj, cls, params):
        """Ids given for a list of whole objects (`tax_rates[]=txr_...`) become the objects, as
        Stripe answers them; an id the account does not have is resource_missing."""
        for name, item_cls in resource_list_fields(cls).items():
            given = params.get(name)
            if not isinstance(given, list) or name not in obj:
                continue
            obj[name] = [
                dict(self.lookup(value, item_cls.OBJECT_NAME, f"{name}[{index}]"))
                if isinstance(value, str)
                else value
                for index, value in enumerate(given)
            ]

    def generic_create(self, object_name, params):
        """A generic object created as POST /v1/<its resource>s would create it."""
        from fakes.stripe.routes import router

        endpoint, _ = router().match("POST", f"/v1/{object_name}s")
        return self.generic(endpoint, dict(params), [])

    def _parent_of(self, ids):
        if not ids:
            return None
        parent = ids[-1]
        if parent not in self.objects and not self.stripe_mock:
            raise not_found("object", parent)
        return parent

    def _update(self, found, cls, params, path):
        for name, annotation, _ in fields_of(cls):
            if name == "metadata" and "metadata" in params:
                found["metadata"] = apply_metadata(found.get("metadata"), params["metadata"])
            elif name in params and name not in ("id", "object"):
                found[name] = echo(params[name], annotation, path, 0)

    # ------------------------------------------------------------------ search
    def search(self, endpoint, params, path):
        """Stripe's search query language, the subset tests need: `field:'value'` and
        `metadata['key']:'value'` clauses joined by AND (docs.stripe.com/search)."""
        cls = endpoint.resource_class()
        clauses = parse_query(params.get("query", ""))
        limit = int(params.get("limit") or 10)
        start = int(params.get("page") or 0)
        matches = []
        for obj in reversed(self.all(cls.OBJECT_NAME)):
            if all(_matches(obj, field, op, value) for field, op, value in clauses):
                matches.append(obj)
        data = matches[start : start + limit]
        more = len(matches) > start + limit
        answer = {
            "object": "search_result",
            "data": data,
            "has_more": more,
            "next_page": str(start + limit) if more else None,
            "url": path,
        }
        if self.stripe_mock:
            # stripe-mock answers a search from its fixture: one object, with total_count
            if not data and not start:
                answer["data"] = [self.fixture(cls.OBJECT_NAME)]
            answer["total_count"] = max(len(matches), len(answer["data"]))
        return answer


def parse_query(query):
    pattern = re.compile(
        r"\s*(?:AND\s+)?(metadata\[['\"]([^'\"]+)['\"]\]|[a-z_.]+)\s*(:|>=|<=|>|<)\s*"
        r"(?:['\"]([^'\"]*)['\"]|(\S+))"
    )
    clauses, position = [], 0
    query = query.strip()
    while position < len(query):
        match = pattern.match(query, position)
        if not match:
            raise invalid(f"We were unable to parse your search query: {query}", None, "query")
        field = ("metadata", match.group(2)) if match.group(2) else match.group(1)
        value = match.group(4) if match.group(4) is not None else match.group(5)
        clauses.append((field, match.group(3), value))
        position = match.end()
    return clauses


def _matches(obj, field, op, value):
    if isinstance(field, tuple):
        actual = (obj.get("metadata") or {}).get(field[1])
    else:
        actual = obj
        for part in field.split("."):
            actual = actual.get(part) if isinstance(actual, dict) else None
    if op == ":":
        return str(actual).lower() == value.lower() if actual is not None else value == ""
    try:
        left, right = float(actual), float(value)
    except (TypeError, ValueError):
        return False
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[op]
