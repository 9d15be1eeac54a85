"""Stripe's wire format: form decoding, error bodies, and the small coercions handlers share."""

import hashlib
import json
import re
import secrets
import string
from urllib.parse import unquote_plus

import stripe

from fakes.stripe.currencies import format_amount  # noqa: F401 (handlers import it here)

# The API version stripe-python pins; the fake answers as that version does.
API_VERSION = stripe.api_version


class StripeError(Exception):
    def __init__(self, status, type, message, code=None, param=None, **extra):
        super().__init__(message)
        self.status = status
        self.body = {"type": type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param
        self.body.update(extra)


class FrozenDict(dict):
    """A sub-object shared between stored objects (to keep each small): JSON-encodes and
    pickles like a dict, refuses changes in place (handlers replace it instead)."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("a shared sub-object of the fake Stripe: replace it, do not change it")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

    def __deepcopy__(self, memo):
        return self


EMPTY = FrozenDict()


ALPHANUMERIC = string.ascii_letters + string.digits


def client_secret_tail():
    """The part of a client secret after `_secret_`: letters and digits only, as Stripe's
    (`pi_3MtwBw..._secret_YrKJUKribcBjcG8HVhfZluoGH`), so `\\w+` finds all of it."""
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(25))


def invalid(message, code=None, param=None, status=400, **extra):
    return StripeError(status, "invalid_request_error", message, code, param, **extra)


def not_found(object_name, object_id, param="id"):
    """resource_missing: 404 for the object the URL names, 400 for one a parameter names
    (`customer=cus_x` on a charge), as Stripe answers them."""
    label = object_name.replace("_", " ")
    status = 404 if param == "id" else 400
    return invalid(f"No such {label}: '{object_id}'", "resource_missing", param, status=status)


KEY_PARTS = re.compile(r"[^\[\]]+|\[\]")


def _listify(value, key=""):
    """Stripe reads a map keyed 0, 1, 2, ... (items[0][x]=...) as an array (not in metadata)."""
    if isinstance(value, dict):
        if key == "metadata":
            return value
        value = {name: _listify(item, name) for name, item in value.items()}
        if value and all(name.isdigit() for name in value):
            return [value[name] for name in sorted(value, key=int)]
        return value
    if isinstance(value, list):
        return [_listify(item) for item in value]
    return value


def _unquote(text):
    return unquote_plus(text) if "%" in text or "+" in text else text


def form_pairs(raw):
    """(key, value) pairs of a form, as `parse_qsl(raw, keep_blank_values=True)` gives them
    (a field without `=` has the value ""), without decoding what has nothing encoded."""
    pairs = []
    for field in raw.split("&"):
        if field:
            key, _, value = field.partition("=")
            pairs.append((_unquote(key), _unquote(value)))
    return pairs


def decode_form(raw):
    """Stripe's form encoding to a dict: card[number]=x nests, a[]=x and a[0]=x are lists."""
    result = {}
    indexed = False
    for key, value in form_pairs(raw):
        if "[" not in key:
            result[key] = value
            continue
        parts = KEY_PARTS.findall(key)
        target = result
        for index, part in enumerate(parts):
            if part == "[]":
                continue
            last = index == len(parts) - 1
            if not last and parts[index + 1] == "[]":  # name[]=value
                found = target.get(part)
                if not isinstance(found, list):
                    found = target[part] = []
                found.append(value)
                break
            if last:
                target[part] = value
            else:
                indexed = indexed or parts[index + 1].isdigit()
                nested = target.get(part)
                if not isinstance(nested, dict):
                    nested = target[part] = {}
                target = nested
    return _listify(result) if indexed else result


def redact(params):
    """A copy of the parameters without card numbers or CVCs (at any depth, e.g. card[number]
    or payment_method_data[card][number]): the fake keeps no PAN either."""
    changed = False
    result = {}
    for key, value in params.items():
        if isinstance(value, dict):
            if key == "card" and ("number" in value or "cvc" in value):
                value = {**value, "number": "****" + str(value.get("number", ""))[-4:]}
                value.pop("cvc", None)
                changed = True
            else:
                inner = redact(value)
                changed = changed or inner is not value
                value = inner
        result[key] = value
    return result if changed else params


CARD_DATA_IN_FORM = re.compile(r"(number|cvc)(%5D|\])", re.I)


encode_json = json.JSONEncoder(separators=(",", ":")).encode  # as json.dumps(separators=...)
_canonical = json.JSONEncoder(sort_keys=True).encode


def fingerprint(method, path, params):
    return hashlib.sha256(_canonical([method, path, params]).encode()).hexdigest()


def as_int(params, name, required=False):
    if name not in params:
        if required:
            raise invalid(f"Missing required param: {name}.", "parameter_missing", name)
        return None
    value = params[name]
    if isinstance(value, bool):
        value = str(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid integer: {value}", "parameter_invalid_integer", name) from None


def as_bool(params, name, default):
    if name not in params:
        return default
    value = params[name]
    if isinstance(value, bool):
        return value
    value = str(value).lower()
    if value not in ("true", "false"):
        raise invalid(f"Invalid boolean: {params[name]}", "parameter_invalid_boolean", name)
    return value == "true"


ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def empty_billing_details():
    return {"address": dict(ADDRESS), "email": None, "name": None, "phone": None, "tax_id": None}
