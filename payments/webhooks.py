"""Verify, parse and shape-check a Stripe webhook delivery before anything applies it.

The order matters: the signature is checked over the exact bytes first (an
unsigned body learns nothing more than `invalid_signature`), then the text is
parsed with the same hardened loader as the API (bounded depth, no lone
surrogates), then the event is checked against the shape of Stripe's Event
object (https://docs.stripe.com/api/events/object) and against what our
database columns can hold. Anything that fails is a 400 `invalid_payload`, so a
bad event is neither a 500 (which Stripe would retry for days) nor silently
acknowledged.
"""

import stripe

from conventions.errors import ApiError
from conventions.inputs import ascii_digits, is_printable_ascii, loads_strict

# PositiveIntegerField holds 0..2^31-1 on every backend Django supports.
MAX_AMOUNT = 2**31 - 1
# Amounts on the charge / payment intent objects this app reads.
AMOUNT_FIELDS = ("amount", "amount_refunded", "amount_captured", "amount_received")
# Strings the app copies into columns, with the columns' lengths (payments.models.Payment).
ID_FIELDS = {"id": 255, "payment_intent": 255, "latest_charge": 255}
TEXT_FIELDS = {"status": 64, "failure_code": 64, "failure_message": 500}
CARD_FIELDS = {"brand": 32, "last4": 4}
ERROR_FIELDS = {"code": 64, "decline_code": 64, "message": 500}
# Our own metadata.payment_id is a Payment primary key (BigAutoField).
MAX_PAYMENT_ID_DIGITS = 18


# Stripe's header is "t=<unix time>,v1=<hex>[,v1=...][,v0=...]": a few hundred characters
# (one v1 per active signing secret). Anything longer or outside printable ASCII is not
# one, and never reaches the verifier: its hmac.compare_digest raises TypeError on a
# non-ASCII str (a 500), which is what a WSGI server's latin-1 decoding of UTF-8 bytes
# (PEP 3333) hands over.
MAX_SIGNATURE_LENGTH = 4096


class InvalidEvent(ValueError):
    pass


def invalid(message):
    return ApiError(f"The webhook body is not a Stripe event: {message}", code="invalid_payload")


def bad_signature(message):
    return ApiError(message, code="invalid_signature", param="Stripe-Signature")


def construct_event(payload, signature, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE):
    """A verified, well-formed event from the raw body (the checked JSON as plain dicts,
    which payments.stripe_objects reads as it reads stripe-python's objects), or an
    ApiError (400)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("the body is not UTF-8 text.") from None
    signature = signature or ""
    if len(signature) > MAX_SIGNATURE_LENGTH or not is_printable_ascii(signature):
        raise bad_signature(
            "The Stripe-Signature header is not Stripe's (t=...,v1=..., printable ASCII, "
            f"at most {MAX_SIGNATURE_LENGTH} characters)."
        )
    try:
        # The stripe library's own check (timestamp tolerance, v1 scheme, constant time).
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
    except stripe.SignatureVerificationError as error:
        raise bad_signature("The Stripe-Signature header does not verify.") from error
    try:
        data = loads_strict(text)
    except ValueError as error:
        raise invalid(str(error)) from None
    try:
        check_event_shape(data)
    except InvalidEvent as error:
        raise invalid(str(error)) from None
    # Plain data: stripe.Event.construct_from (what stripe.Webhook.construct_event builds)
    # turns every nested object into a StripeObject, a quarter of a delivery's CPU time, for
    # the few fields events.apply_event reads.
    return data


def _is_int(value):
    return type(value) is int  # bool is an int subclass: Stripe never sends one for a number


def _check_string(container, name, max_length, where, printable=False):
    value = container.get(name)
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidEvent(f"{where}{name} is not a string.")
    if len(value) > max_length:
        raise InvalidEvent(f"{where}{name} is longer than {max_length} characters.")
    if "\x00" in value:
        raise InvalidEvent(f"{where}{name} holds a NUL character.")
    if printable and not is_printable_ascii(value):
        raise InvalidEvent(f"{where}{name} is not printable ASCII.")


def check_event_shape(event):
    """Raise InvalidEvent unless `event` is an Event object this app can store and apply."""
    if not isinstance(event, dict):
        raise InvalidEvent(f"the top level is a JSON {type(event).__name__}, not an object.")
    for name, max_length in (("id", 255), ("type", 100)):
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidEvent(f"{name} must be a non-empty string.")
        _check_string(event, name, max_length, "", printable=True)
    if event.get("object", "event") != "event":
        raise InvalidEvent('object must be "event".')
    if "created" in event and not _is_int(event["created"]):
        raise InvalidEvent("created must be an integer (a Unix time).")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise InvalidEvent("data.object must be an object.")
    check_object_shape(data["object"])


def check_object_shape(obj):
    """The fields of data.object that payments.settlement reads, against our columns."""
    where = "data.object."
    for name in AMOUNT_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not _is_int(value) or not 0 <= value <= MAX_AMOUNT:
            raise InvalidEvent(f"{where}{name} must be an integer from 0 to {MAX_AMOUNT}.")
    for name, max_length in ID_FIELDS.items():
        if isinstance(obj.get(name), dict):  # an expanded object, e.g. latest_charge
            _check_string(obj[name], "id", max_length, f"{where}{name}.", printable=True)
        else:
            _check_string(obj, name, max_length, where, printable=True)
    for name, max_length in TEXT_FIELDS.items():
        _check_string(obj, name, max_length, where)
    metadata = obj.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(
            isinstance(value, str) for value in metadata.values()
        ):
            # Stripe's metadata is string keys to string values, always.
            raise InvalidEvent(f"{where}metadata must map keys to strings.")
        payment_id = metadata.get("payment_id")
        # Our own charges carry our numeric id; "²" or "١٢" would pass str.isdigit().
        if payment_id and payment_id.isdigit():
            if not ascii_digits(payment_id) or len(payment_id) > MAX_PAYMENT_ID_DIGITS:
                raise InvalidEvent(f"{where}metadata.payment_id is not one of our ids.")
    details = obj.get("payment_method_details")
    if isinstance(details, dict) and isinstance(details.get("card"), dict):
        for name, max_length in CARD_FIELDS.items():
            _check_string(details["card"], name, max_length, f"{where}payment_method_details.card.")
    error = obj.get("last_payment_error")
    if error is not None:
        if not isinstance(error, dict):
            raise InvalidEvent(f"{where}last_payment_error must be an object.")
        for name, max_length in ERROR_FIELDS.items():
            _check_string(error, name, max_length, f"{where}last_payment_error.")
