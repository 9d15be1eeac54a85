"""Reading Stripe's objects as stripe-python hands them over (StripeObject) or as plain dicts
(a webhook's event, a test's fixture): the fields this app reads, and nothing else."""


def field(obj, name, default=None):
    """obj[name] for a StripeObject (no .get since stripe 13) or a dict; default if absent or null."""
    try:
        value = obj[name]
    except (KeyError, TypeError, AttributeError):
        return default
    return default if value is None else value


def metadata(obj, name):
    """Our own metadata value on a Stripe object, as a string ("" if absent)."""
    return str(field(field(obj, "metadata", {}), name, ""))


def object_id(value):
    """The id of an expandable field, whether Stripe sent the id or the object."""
    return value if isinstance(value, str) else field(value, "id")


def charge_refunds(charge):
    """The charge's complete list of refunds, or None if this snapshot does not carry it.

    Stripe includes `refunds` on a charge only when expanded, and lists at most 10.
    """
    refunds = field(charge, "refunds")
    if refunds is None or isinstance(refunds, str) or field(refunds, "has_more", False):
        return None
    data = field(refunds, "data")
    return list(data) if data is not None else None


def card_of(payment_method):
    """(brand, last4) of a PaymentMethod or a charge's payment_method_details."""
    card = field(payment_method, "card", {})
    return field(card, "brand", ""), field(card, "last4", "")
