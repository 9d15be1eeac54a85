"""Which fields expand, from stripe-python's declarations (docs.stripe.com/api/expanding_objects).

A resource class declares an expandable field as `ExpandableField["Customer"]` (at run time
`Union[str, Customer]`): an id or the object. Optional lists (`ListObject[Refund]`, a
charge's `refunds`, a customer's `sources`) are includable the same way. A path descends
through expandable fields and nested sub-objects (`payment_intent.latest_charge`,
`last_payment_error.payment_method`), "up to four levels deep"; on a list its items are
`data.<field>`. Anything else is refused: "This property cannot be expanded (x)."
"""

import functools
import typing

import stripe

from fakes.stripe.generic import fields_of
from fakes.stripe.wire import StripeError, invalid

MAX_DEPTH = 4


def _resolve(member):
    if isinstance(member, typing.ForwardRef):
        member = getattr(stripe, member.__forward_arg__, None)
    elif isinstance(member, str):  # a field annotated with the class's name ("Price")
        member = getattr(stripe, member, None)
    return member if isinstance(member, type) else None


@functools.cache
def field_kind(cls, name):
    """("expandable", resource class) / ("list", item class) / ("nested", class) / None."""
    annotation = next((a for field, a, _ in fields_of(cls) if field == name), None)
    if annotation is None:
        return None
    union = typing.get_origin(annotation) is typing.Union
    members = [m for m in (typing.get_args(annotation) if union else (annotation,))
               if m is not type(None)]  # fmt: skip
    for member in members:
        if typing.get_origin(member) is not None and issubclass(
            typing.get_origin(member), stripe.ListObject
        ):
            inner = typing.get_args(member)
            return "list", _resolve(inner[0]) if inner else None
    for member in members:
        # an includable array of sub-objects (a plan's `tiers`: "This field is not included
        # by default. To include it in the response, expand the tiers field.")
        if typing.get_origin(member) is list and typing.get_args(member):
            inner = _resolve(typing.get_args(member)[0])
            if inner is not None and issubclass(inner, stripe.StripeObject) and union:
                return "list", inner
    classes = [c for c in map(_resolve, members) if c is not None]
    resources = [
        c for c in classes if issubclass(c, stripe.StripeObject) and getattr(c, "OBJECT_NAME", None)
    ]
    if str in members and resources:
        live = [c for c in resources if not c.__name__.startswith("Deleted")] or resources
        return "expandable", live[0]
    nested = [
        c for c in classes if issubclass(c, stripe.StripeObject) and c is not stripe.StripeObject
    ]
    if nested:
        return "nested", nested[0]
    return None


def check(cls, path, is_list):
    """Refuse a path Stripe would not expand (400, param `expand`)."""
    parts = path.split(".")
    if len(parts) > MAX_DEPTH + (1 if is_list else 0):
        raise invalid(
            f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
            None,
            "expand",
        )
    if cls is None:
        return  # the answer is a union the declarations do not name: nothing to check
    current, expanded, in_list = cls, False, False
    for index, part in enumerate(parts):
        if in_list:  # an included list (tax_ids) descends through its `data`
            in_list = False
            if part == "data":
                continue
        if is_list and index == 0:
            if part != "data":
                hint = ""
                if _valid(cls, parts):
                    hint = f" You may want to try expanding 'data.{path}' instead."
                raise invalid(f"This property cannot be expanded ({path}).{hint}", None, "expand")
            continue
        kind = field_kind(current, part) if current is not None else None
        if kind is None:
            raise invalid(f"This property cannot be expanded ({path}).", None, "expand")
        expanded = kind[0] in ("expandable", "list")
        in_list = kind[0] == "list"
        current = kind[1]
    if not expanded:
        raise invalid(f"This property cannot be expanded ({path}).", None, "expand")


def _valid(cls, parts):
    try:
        check(cls, ".".join(parts), False)
    except StripeError:
        return False
    return True
