"""Request validation driven by stripe-python's parameter declarations (stripe.params).

Each endpoint's params TypedDict is resolved once (`typing.get_type_hints`, cached) into a
small tree of nodes; a request's decoded form is then coerced to the declared types and
checked, as stripe-mock does, answering in Stripe's wording:

- unknown parameter -> `parameter_unknown`, `param` in bracket form (`shipping[address][bogus]`);
- `Invalid integer: ten` -> `parameter_invalid_integer`; an empty string where the parameter
  cannot be unset -> `parameter_invalid_empty` (Stripe's "You passed an empty string for ...");
- closed enums (`Literal[...]`) are enforced; open ones (`Literal[...] | str`, ~1,900 fields)
  only where ENUMS below lists the values Stripe documents, for the resources we model;
- missing required keys -> `parameter_missing`; metadata: <= 50 keys, keys <= 40 characters,
  values <= 500 characters, strings only, `""` unsets (docs.stripe.com/api/metadata).
Behavioural rules (a charge needs a source or a customer) stay in the resource modules.
Error codes are those Stripe documents (docs.stripe.com/error-codes); where Stripe sends
none for a case (an enum value, a non-string, metadata limits), the error has no `code`.
"""

import functools
import importlib
import types
import typing

import typing_extensions
from stripe._request_options import RequestOptions
from stripe._stripe_context import StripeContext
from stripe._stripe_object import UntypedStripeObject

from fakes.stripe.wire import API_VERSION, EMPTY, StripeError, invalid

OPTION_KEYS = frozenset(RequestOptions.__annotations__)
_LOCALS = {"StripeContext": StripeContext, "Mapping": typing.Mapping, "Any": typing.Any}

# Open enums of the resources we model, with the values Stripe's API reference documents
# for them; keyed by endpoint template, then by bracket path.
CAPTURE = ("automatic", "automatic_async", "manual")
FUTURE_USAGE = ("off_session", "on_session")
ENUMS = {
    "/v1/payment_intents": {
        "capture_method": CAPTURE,
        "confirmation_method": ("automatic", "manual"),
        "setup_future_usage": FUTURE_USAGE,
    },
    "/v1/payment_intents/{intent}": {
        "capture_method": CAPTURE,
        "setup_future_usage": FUTURE_USAGE,
    },
    "/v1/payment_intents/{intent}/confirm": {
        "capture_method": CAPTURE,
        "setup_future_usage": FUTURE_USAGE,
    },
    "/v1/payment_intents/{intent}/cancel": {
        "cancellation_reason": ("abandoned", "duplicate", "fraudulent", "requested_by_customer"),
    },
    "/v1/refunds": {"reason": ("duplicate", "fraudulent", "requested_by_customer")},
    # docs.stripe.com/api/plans/create#create_plan-interval, prices: recurring[interval]
    "/v1/plans": {"interval": ("day", "month", "week", "year")},
    "/v1/products": {"type": ("good", "service")},
    "/v1/prices": {"recurring[interval]": ("day", "month", "week", "year")},
    "/v1/customers": {"tax_exempt": ("exempt", "none", "reverse")},
    "/v1/customers/{customer}": {"tax_exempt": ("exempt", "none", "reverse")},
    "/v1/payment_methods": {"type": ("card",)},
}

# Parameters the pinned API version removed, answered as that version does. 2026-09-30.endive
# "Removes the payment method types parameter from Payment Intents and Setup Intents":
# "Passing payment_method_types on this API version returns a 400 error with the code
# payment_method_types_no_longer_supported" (docs.stripe.com/changelog/endive/2026-09-30).
REMOVED = {
    template: {"payment_method_types": "payment_method_types_no_longer_supported"}
    for template in (
        "/v1/payment_intents",
        "/v1/payment_intents/{intent}",
        "/v1/payment_intents/{intent}/confirm",
        "/v1/setup_intents",
        "/v1/setup_intents/{intent}",
    )
}

METADATA_MAX_KEYS, METADATA_KEY_LENGTH, METADATA_VALUE_LENGTH = 50, 40, 500


# ------------------------------------------------------------------ nodes
# ("obj", {name: (required, node)}), ("int",), ("float",), ("bool",), ("str",),
# ("enum", values, open), ("list", node), ("map", node), ("any",),
# ("union", (nodes...), unsettable): `Literal[''] | X` means "" unsets the parameter.
ANY = ("any",)
SCALARS = {int: ("int",), float: ("float",), bool: ("bool",), str: ("str",)}


def _is_typeddict(tp):
    return isinstance(tp, type) and typing_extensions.is_typeddict(tp)


def node_for(tp, seen):
    if tp in SCALARS:
        return SCALARS[tp]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return ("enum", frozenset(str(a) for a in args), False)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        unsettable = any(
            typing.get_origin(a) is typing.Literal and args_of(a) == ("",) for a in members
        )
        members = [
            a
            for a in members
            if not (typing.get_origin(a) is typing.Literal and args_of(a) == ("",))
        ]
        literals = [a for a in members if typing.get_origin(a) is typing.Literal]
        if literals and str in members:  # an open enum: Literal[...] | str
            values = frozenset(str(v) for lit in literals for v in typing.get_args(lit))
            node = ("enum", values, True)
            others = [a for a in members if a is not str and a not in literals]
            nodes = (node, *(node_for(a, seen) for a in others))
        else:
            nodes = tuple(node_for(a, seen) for a in members)
        if len(nodes) == 1 and not unsettable:
            return nodes[0]
        return ("union", nodes, unsettable)
    if origin in (list, list):
        return ("list", node_for(args[0], seen) if args else ANY)
    if origin in (dict, dict) or origin is typing.Mapping:
        return ("map", node_for(args[1], seen) if len(args) == 2 else ANY)
    if origin is UntypedStripeObject or tp is UntypedStripeObject:
        return ("map", ANY)
    if _is_typeddict(tp):
        return compile_typeddict(tp, seen)
    return ANY


def args_of(literal):
    return tuple(str(a) for a in typing.get_args(literal))


def compile_typeddict(cls, seen=None):
    seen = {} if seen is None else seen
    if cls in seen:
        return seen[cls]
    fields = {}
    node = ("obj", fields)
    seen[cls] = node
    hints = typing.get_type_hints(cls, localns=_LOCALS)
    required = getattr(cls, "__required_keys__", frozenset())
    for name, tp in hints.items():
        if name in OPTION_KEYS:
            continue
        fields[name] = (name in required, node_for(tp, seen))
    return node


@functools.cache
def schema_for(endpoint):
    """The compiled parameter tree of an endpoint (resolved once per process)."""
    if not endpoint.params_module or not endpoint.params_class:
        return ("obj", {})
    module = importlib.import_module(endpoint.params_module)
    return compile_typeddict(getattr(module, endpoint.params_class))


# ------------------------------------------------------------- validation
def validate(endpoint, params):
    """Coerce and check decoded parameters against the endpoint's declaration, in place."""
    node = schema_for(endpoint)
    enums = ENUMS.get(endpoint.template, {})
    for name, code in REMOVED.get(endpoint.template, {}).items():
        if name in params:
            raise invalid(
                f"The parameter {name} is no longer supported on API version {_version()}. "
                "Use allowed_payment_method_types or dynamic payment methods instead.",
                code,
                name,
            )
    return _object(params, node[1], "", enums)


def _version():
    return API_VERSION


def _object(value, fields, path, enums):
    if not isinstance(value, dict):
        raise invalid("Invalid object", None, path or None)
    for name in value:
        if name not in fields:
            full = f"{path}[{name}]" if path else name
            raise invalid(f"Received unknown parameter: {full}", "parameter_unknown", full)
    for name, (required, child) in fields.items():
        full = f"{path}[{name}]" if path else name
        if name not in value:
            if required:
                raise invalid(f"Missing required param: {full}.", "parameter_missing", full)
            continue
        if name == "metadata" and child[0] in ("union", "map"):
            value[name] = _metadata(value[name], full)
            continue
        value[name] = _check(value[name], child, full, enums, required)
    return value


def _empty(path):
    return invalid(
        f"You passed an empty string for '{path}'. We assume empty values are an attempt to "
        f"unset a parameter; however '{path}' cannot be unset. You should remove '{path}' "
        "from your request or supply a non-empty value.",
        "parameter_invalid_empty",
        path,
    )


def _check(value, node, path, enums, required=False):
    kind = node[0]
    if kind == "any":
        return value
    if kind == "union":
        nodes, unsettable = node[1], node[2]
        if value == "":
            if unsettable:
                return ""
            raise _empty(path)
        error = None
        for child in sorted(nodes, key=_preference(value)):
            try:
                return _check(value, child, path, enums, required)
            except StripeError as failure:
                error = error or failure
        raise error
    if value == "" and kind != "str":
        raise _empty(path)
    if kind == "str":
        if isinstance(value, dict | list):
            raise invalid(f"Invalid string: {_show(value)}", None, path)
        if value == "":
            if required:
                raise invalid(
                    f"Invalid string: the required string '{path}' is empty.",
                    "parameter_invalid_string_empty",
                    path,
                )
            raise _empty(path)
        return value
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value) if not isinstance(value, dict | list) else _show(value)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise invalid(f"Invalid integer: {text}", "parameter_invalid_integer", path)
    if kind == "float":
        try:
            return float(value) if not isinstance(value, dict | list | bool) else _bad()
        except (TypeError, ValueError):
            raise invalid(f"Invalid decimal: {_show(value)}", None, path) from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise invalid(f"Invalid boolean: {_show(value)}", None, path)
    if kind == "enum":
        values, open_ = node[1], node[2]
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {_show(value)}", None, path)
        documented = enums.get(path)
        allowed = frozenset(documented) if documented else (None if open_ else values)
        if allowed is not None and value not in allowed:
            raise invalid(f"Invalid {path}: must be one of {_one_of(allowed)}", None, path)
        return value
    if kind == "list":
        if isinstance(value, dict) and not value:
            return []
        if not isinstance(value, list):
            raise invalid("Invalid array", None, path)
        return [_check(item, node[1], f"{path}[{i}]", enums) for i, item in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict):
            raise invalid("Invalid object", None, path)
        return {k: _check(v, node[1], f"{path}[{k}]", enums) for k, v in value.items()}
    if kind == "obj":
        return _object(value, node[1], path, enums)
    return value


def _bad():
    raise ValueError


def _preference(value):
    """Try the union member that fits the value's shape first (an object for a dict)."""
    shaped = isinstance(value, dict)

    def key(node):
        return 0 if (node[0] in ("obj", "map")) == shaped else 1

    return key


def _one_of(values):
    values = sorted(values)
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])}, or {values[-1]}"


def _show(value):
    return str(value)[:200]


def _metadata(value, path):
    """Stripe's metadata rules (docs.stripe.com/api/metadata): the exact wording of these
    errors is not documented; the limits, the param and the type are."""
    if value == "":
        return ""  # unsets every key
    if not isinstance(value, dict):
        raise invalid("Invalid object", None, path)
    if len(value) > METADATA_MAX_KEYS:
        raise invalid(
            f"Invalid {path}: metadata can have at most {METADATA_MAX_KEYS} keys; "
            f"you passed {len(value)}.",
            None,
            path,
        )
    for key, item in value.items():
        full = f"{path}[{key}]"
        if len(key) > METADATA_KEY_LENGTH:
            raise invalid(
                f"Invalid {path}: keys can be at most {METADATA_KEY_LENGTH} characters long; "
                f"'{key[:60]}' has {len(key)}.",
                None,
                full,
            )
        if not isinstance(item, str):
            raise invalid(
                f"Invalid {full}: metadata values must be strings, not {_show(item)}.",
                None,
                full,
            )
        if len(item) > METADATA_VALUE_LENGTH:
            raise invalid(
                f"Invalid {full}: values can be at most {METADATA_VALUE_LENGTH} characters long; "
                f"you passed {len(item)}.",
                None,
                full,
            )
    return value


def apply_metadata(current, given):
    """Stripe's merge: new keys are set, keys given "" are removed, `metadata=""` clears."""
    if given is None:
        return current or EMPTY  # shared and frozen: updates build a new dict
    if given == "":
        return EMPTY
    merged = dict(current or {})
    for key, item in given.items():
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = item
    return merged
