"""Hostile input, refused before anything reads it: body size, JSON depth, lone
surrogates, non-finite numbers, and header values an app stores (Idempotency-Key)."""

import json
import re

from django.conf import settings
from rest_framework import exceptions, parsers

from conventions.errors import ApiError, json_error


class RequestSizeLimitMiddleware:
    """Refuse oversized or malformed-length bodies with 413/400 before anything reads them.

    DRF's parsers stream the body themselves, bypassing Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE check, so the limit is enforced here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return json_error(400, "invalid_content_length", "Content-Length is not a number.")
        if length < 0:
            return json_error(400, "invalid_content_length", "Content-Length is negative.")
        if length > settings.API_MAX_BODY_BYTES:
            return json_error(
                413,
                "payload_too_large",
                f"The request body is {length} bytes; the limit is "
                f"{settings.API_MAX_BODY_BYTES} bytes.",
            )
        return self.get_response(request)


# A JSON string (closed, or running to the end of the text) or a bracket. The string
# branch always matches once it starts (it stops only at a quote or at the end), so
# finditer never retries from inside a string: linear time on any input, unlike a
# pattern that must find the closing quote (quadratic on '"\\"\\"\\...').
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.S)
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONTooDeep(ValueError):
    pass


def json_depth(text):
    """The deepest nesting of arrays/objects in a JSON text, without recursion.

    Brackets inside strings do not count. For text that is not valid JSON the
    figure is an upper bound of what json.loads would reach before failing,
    which is all the check needs.
    """
    depth = deepest = 0
    for match in _JSON_TOKEN.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _lone_surrogate(value):
    """The first string (key or value) holding a lone UTF-16 surrogate, walked iteratively."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def loads_strict(text, max_depth=None):
    """json.loads for untrusted text: bounded depth, no NaN/Infinity, no lone surrogates.

    Raises ValueError (JSONTooDeep for nesting) with a message safe to show.
    """
    max_depth = settings.API_MAX_JSON_DEPTH if max_depth is None else max_depth
    if json_depth(text) > max_depth:
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.")
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as error:  # cannot happen under the depth limit; kept as a guard
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.") from error
    except ValueError as error:
        # json's messages quote a position, never the input itself; int() over 4300
        # digits says so too.
        raise ValueError(f"JSON parse error - {error}") from None
    if _lone_surrogate(data) is not None:
        # "\ud800" is valid JSON text but not a Unicode string: it cannot be stored or
        # rendered as UTF-8.
        raise ValueError("JSON parse error - a string holds a lone UTF-16 surrogate.")
    return data


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, hardened: every decoding failure is a 400 `parse_error`.

    Refuses bodies that are not valid text in their charset (UTF-8 by default),
    nesting deeper than settings.API_MAX_JSON_DEPTH (checked before json.loads, which
    recurses), NaN/Infinity, integers over Python's 4300-digit limit and strings
    holding lone surrogates.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            raise exceptions.ParseError(
                f"The body is not valid {encoding} text.", code="parse_error"
            ) from None
        try:
            return loads_strict(text)
        except ValueError as error:
            raise exceptions.ParseError(str(error), code="parse_error") from None


def is_printable_ascii(value):
    return all(" " <= char <= "~" for char in value)


def idempotency_key_from(request, header="Idempotency-Key", max_length=255):
    """The request's Idempotency-Key header, checked: printable ASCII, at most 255 characters.

    Missing or blank is "" (no key). Anything else unusable is a 400
    `invalid_idempotency_key`, so a key is never stored garbled or cut.
    """
    key = request.headers.get(header, "").strip()
    if not is_printable_ascii(key):
        raise ApiError(
            f"{header} may hold printable ASCII characters only.",
            code="invalid_idempotency_key",
            param=header,
        )
    if len(key) > max_length:
        raise ApiError(
            f"{header} is longer than {max_length} characters.",
            code="invalid_idempotency_key",
            param=header,
        )
    return key


def ascii_digits(value):
    """True for a non-empty string of 0-9 only (str.isdigit also accepts "\u00b2", "\u0661", "\uff14")."""
    return bool(value) and value.isascii() and value.isdigit()
